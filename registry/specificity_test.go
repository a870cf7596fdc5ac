package registry

import "strings"

// The signature comparison of the design, step by step: the definition of
// "most specific" that patternIndex.best implements without walking
// alignments. Tests rank keys with it to check the index.

// stepKind orders the kinds of signature step: a lower kind is more specific.
type stepKind uint8

const (
	stepLiteral stepKind = iota
	stepQuestion
	stepStar
)

// aligner walks the first alignment of key with name one signature step at
// a time, without allocating.
type aligner struct {
	key, name string
	keyPos    int
	namePos   int
}

// next returns the next step of the alignment; ok is false once the key is
// exhausted or if it does not align.
func (a *aligner) next() (kind stepKind, length int, ok bool) {
	if a.keyPos >= len(a.key) {
		return 0, 0, false
	}
	switch c := a.key[a.keyPos]; c {
	case wildcardQuestion:
		if a.namePos > len(a.name) {
			return 0, 0, false
		}
		n, ok := questionLength(a.key[a.keyPos+1:], a.name[a.namePos:])
		if !ok {
			return 0, 0, false
		}
		a.keyPos++
		a.namePos += n
		return stepQuestion, n, true
	case wildcardStar:
		rest := a.key[a.keyPos+1:]
		var start int
		if next := strings.IndexByte(rest, wildcardStar); next >= 0 {
			start, _, ok = placeSegment(rest[:next], a.name, a.namePos+1)
		} else if rest == "" {
			start, ok = len(a.name), a.namePos < len(a.name)
		} else {
			start, ok = placeLastSegment(rest, a.name, a.namePos+1)
		}
		if !ok {
			return 0, 0, false
		}
		length = start - a.namePos
		a.keyPos++
		a.namePos = start
		return stepStar, length, true
	default:
		if a.namePos >= len(a.name) || a.name[a.namePos] != c {
			return 0, 0, false
		}
		a.keyPos++
		a.namePos++
		return stepLiteral, 1, true
	}
}

// moreSpecific reports whether key a is a more specific match for name than
// key b; both must match name. It compares their signatures step by step
// from the left: at the first step that differs, the lower kind wins, and
// for the same kind the shorter length wins. Two different keys that match
// the same name always differ somewhere, so exactly one of
// moreSpecific(a, b, name) and moreSpecific(b, a, name) holds when a != b.
func moreSpecific(a, b, name string) bool {
	// The common literal prefix aligns identically in both.
	common := 0
	for common < len(a) && common < len(b) && a[common] == b[common] && !isWildcard(a[common]) {
		common++
	}
	sa := aligner{key: a, name: name, keyPos: common, namePos: common}
	sb := aligner{key: b, name: name, keyPos: common, namePos: common}
	for {
		kindA, lenA, okA := sa.next()
		kindB, lenB, okB := sb.next()
		if !okA || !okB {
			return false
		}
		if kindA != kindB {
			return kindA < kindB
		}
		if lenA != lenB {
			return lenA < lenB
		}
	}
}
