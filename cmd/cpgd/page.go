package main

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/cpggo/cpg/registry"
)

// page is a members call's page: at most limit members (0: all) after
// the cursor. Paged members come ordered by member ID, then node, an order
// every call sees the same whatever joins in between.
type page struct {
	limit int
	after *memberPos
}

// memberPos is a member's place in the paged order.
type memberPos struct{ id, node string }

func comparePos(m *registry.Member, p memberPos) int {
	return cmp.Or(cmp.Compare(m.ID, p.id), cmp.Compare(m.Node, p.node))
}

func parsePage(q url.Values) (page, error) {
	var p page
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return page{}, fmt.Errorf("query parameter \"limit\": %q is not a page size from 1 to %d", v, maxPage)
		}
		p.limit = n
	}
	if q.Has("after") {
		pos, err := decodeCursor(q.Get("after"))
		if err != nil {
			return page{}, fmt.Errorf("query parameter \"after\": %w", err)
		}
		p.after = &pos
	}
	return p, nil
}

// of returns the page's members of a group, and the cursor of the next
// page if more remain. Without a limit or cursor it is the group as the
// registry orders it (local members first, each part oldest first).
func (p page) of(members []registry.Member) ([]registry.Member, string) {
	if p.limit == 0 && p.after == nil {
		return members, ""
	}
	// The registry's slice is shared: sort a copy.
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b registry.Member) int {
		return comparePos(&a, memberPos{b.ID, b.Node})
	})
	if p.after != nil {
		i, found := slices.BinarySearchFunc(sorted, *p.after, func(m registry.Member, pos memberPos) int { return comparePos(&m, pos) })
		if found {
			i++
		}
		sorted = sorted[i:]
	}
	if p.limit == 0 || len(sorted) <= p.limit {
		return sorted, ""
	}
	last := sorted[p.limit-1]
	return sorted[:p.limit], encodeCursor(memberPos{last.ID, last.Node})
}

// A cursor is the last member of a page, length-prefixed and in base64url
// so that clients treat it as opaque.
func encodeCursor(p memberPos) string {
	b := binary.AppendUvarint(nil, uint64(len(p.id)))
	b = append(b, p.id...)
	b = append(b, p.node...)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errBadCursor = errors.New("not a cursor this API gave (pass a page's \"next\" as it is)")

func decodeCursor(s string) (memberPos, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return memberPos{}, errBadCursor
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return memberPos{}, errBadCursor
	}
	rest := b[k:]
	return memberPos{id: string(rest[:n]), node: string(rest[n:])}, nil
}
