package main

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cpggo/cpg/registry"
)

// The lookup, pick and change answers are the API's hot path: they are
// written here by hand, byte for byte what encoding/json makes of them (the
// tests compare the two), without its reflection, its map of the body and
// its re-validation of time.Time's own JSON, which took most of a lookup's
// time.

// writeMembersJSON answers a lookup: {"group","members"[,"next"]}.
func writeMembersJSON(w http.ResponseWriter, group string, members []registry.Member, next string) {
	buf := jsonBuffers.Get().(*[]byte)
	b := append((*buf)[:0], `{"group":`...)
	b = appendJSONString(b, group)
	b = append(b, `,"members":[`...)
	for i := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMemberJSON(b, &members[i])
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next":`...)
		b = appendJSONString(b, next)
	}
	writeJSONBytes(w, http.StatusOK, append(b, "}\n"...))
	*buf = b
	putJSONBuffer(buf)
}

// writePickJSON answers a pick: {"group","member"}.
func writePickJSON(w http.ResponseWriter, group string, m *registry.Member) {
	buf := jsonBuffers.Get().(*[]byte)
	b := append((*buf)[:0], `{"group":`...)
	b = appendJSONString(b, group)
	b = append(b, `,"member":`...)
	b = appendMemberJSON(b, m)
	writeJSONBytes(w, http.StatusOK, append(b, "}\n"...))
	*buf = b
	putJSONBuffer(buf)
}

// writeChangeJSON answers a join, leave or metadata change:
// {"count","group","member"}.
func writeChangeJSON(w http.ResponseWriter, group, member string, count int) {
	buf := jsonBuffers.Get().(*[]byte)
	b := append((*buf)[:0], `{"count":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	b = append(b, `,"group":`...)
	b = appendJSONString(b, group)
	b = append(b, `,"member":`...)
	b = appendJSONString(b, member)
	writeJSONBytes(w, http.StatusOK, append(b, "}\n"...))
	*buf = b
	putJSONBuffer(buf)
}

var jsonContentType = []string{"application/json"}

// writeJSONBytes sends an encoded JSON body in one write, so that the
// server gives it a Content-Length.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// putJSONBuffer recycles a buffer unless a huge answer grew it: a page of
// a large group must not pin its memory for good.
func putJSONBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		jsonBuffers.Put(b)
	}
}

// appendMemberJSON appends m as memberJSON encodes: id, node, meta (left
// out when empty), count, joined (RFC 3339 in UTC, nanoseconds).
func appendMemberJSON(b []byte, m *registry.Member) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"node":`...)
	b = appendJSONString(b, m.Node)
	if len(m.Meta) > 0 {
		b = append(b, `,"meta":{`...)
		var small [8]string
		keys := small[:0]
		for k := range m.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, m.Meta[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendUint(b, uint64(m.Count), 10)
	b = append(b, `,"joined":"`...)
	b = registry.JoinTime(m).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does by default:
// control characters, quotes, backslashes, <, > and & escaped, invalid
// UTF-8 replaced by U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
