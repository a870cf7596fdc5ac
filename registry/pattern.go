package registry

import (
	"strings"
	"unicode/utf8"
)

// A stored key is a sequence of elements: literal bytes, "?" (always
// followed by a literal character, validation guarantees it) and "*". The
// elements between two stars form a segment; a segment holds no star, so its
// alignment from a given start is forced: a literal takes one equal byte and
// "?C" takes everything up to the first C. Only stars choose.
//
// A star takes the fewest characters that let the rest of the key align.
// Because the end of a segment's alignment never decreases as its start
// moves right (true of a literal, and of "?C", which stops at the first C
// after its start), placing each segment at the earliest start where it
// aligns never rules out a match the rest of the key could make: the next
// star simply takes more. So the first alignment is found greedily, one
// segment at a time, except the last segment, which must also end exactly
// at the end of the name. Each segment is tried at most once per start of
// the name, so matching is polynomial whatever the number of stars, and it
// allocates nothing.

// matchKey reports whether the stored key (concrete or pattern) matches the
// concrete name. It depends on key and name alone.
func matchKey(key, name string) bool {
	star := strings.IndexByte(key, wildcardStar)
	if star < 0 {
		end, ok := alignSegment(key, name, 0)
		return ok && end == len(name)
	}
	pos, ok := alignSegment(key[:star], name, 0)
	if !ok {
		return false
	}
	rest := key[star+1:]
	for {
		// A star starts at pos and takes at least one character.
		next := strings.IndexByte(rest, wildcardStar)
		if next < 0 {
			if rest == "" {
				return pos < len(name)
			}
			_, ok := placeLastSegment(rest, name, pos+1)
			return ok
		}
		_, end, ok := placeSegment(rest[:next], name, pos+1)
		if !ok {
			return false
		}
		pos = end
		rest = rest[next+1:]
	}
}

// alignSegment aligns a star-free segment with name from start and returns
// where it ends.
func alignSegment(seg, name string, start int) (end int, ok bool) {
	pos := start
	for i := 0; i < len(seg); i++ {
		if seg[i] == wildcardQuestion {
			n, ok := questionLength(seg[i+1:], name[pos:])
			if !ok {
				return 0, false
			}
			pos += n
			continue
		}
		if pos >= len(name) || name[pos] != seg[i] {
			return 0, false
		}
		pos++
	}
	return pos, true
}

// questionLength returns how many bytes of name a "?" takes when the key
// continues with afterQuestion: everything up to the first occurrence of
// the next literal character, at least one byte.
func questionLength(afterQuestion, name string) (int, bool) {
	if afterQuestion == "" {
		return 0, false // a trailing "?" is refused at validation
	}
	_, size := utf8.DecodeRuneInString(afterQuestion)
	n := strings.Index(name, afterQuestion[:size])
	return n, n > 0
}

// placeSegment finds the earliest start at or after from where seg aligns
// with name.
func placeSegment(seg, name string, from int) (start, end int, ok bool) {
	for start = from; start < len(name); start++ {
		if seg != "" && seg[0] != wildcardQuestion {
			// Skip to the next place the segment's first literal byte occurs.
			i := strings.IndexByte(name[start:], seg[0])
			if i < 0 {
				return 0, 0, false
			}
			start += i
		}
		if end, ok := alignSegment(seg, name, start); ok {
			return start, end, true
		}
	}
	return 0, 0, false
}

// placeLastSegment finds the earliest start at or after from where seg
// aligns with name and ends exactly at the end of name.
func placeLastSegment(seg, name string, from int) (start int, ok bool) {
	if strings.IndexByte(seg, wildcardQuestion) < 0 {
		// All literal: the start is forced.
		start = len(name) - len(seg)
		return start, start >= from && name[start:] == seg
	}
	for start = from; start < len(name); start++ {
		if end, ok := alignSegment(seg, name, start); ok && end == len(name) {
			return start, true
		}
	}
	return 0, false
}

// watchMatches reports whether a watch on filter (a concrete name or a
// pattern) sees the events of the stored group: the same string, or filter
// is a pattern matching group with group's wildcards taken as literal
// characters. A watch on "/svc/*" therefore sees both "/svc/db" and the
// pattern group "/svc/?/eu", while a watch on "/svc/db" sees only "/svc/db".
func watchMatches(filter, group string) bool {
	return filter == group || (isPattern(filter) && matchKey(filter, group))
}
