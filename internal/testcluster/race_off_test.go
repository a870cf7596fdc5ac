//go:build !race

package testcluster

const timeScale = 1
