//go:build !race

package membership

const testTimeScale = 1
