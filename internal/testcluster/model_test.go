package testcluster

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cpggo/cpg/registry"
)

// entryKey names one member of one group of one scope.
type entryKey struct{ scope, group, member string }

// entryWant is what an owner's own calls left of one member: its join
// count and the value of its one metadata key ("" when it has none).
type entryWant struct {
	count uint32
	meta  string
}

// model is the state the owners' own acknowledged calls imply: for each
// running owner, exactly its members.
type model struct {
	owners map[string]map[entryKey]entryWant
}

func newModel() *model { return &model{owners: make(map[string]map[entryKey]entryWant)} }

// fresh records that owner started with no members (first start, or a
// restart: the last life's members are gone).
func (m *model) fresh(owner string) { m.owners[owner] = make(map[entryKey]entryWant) }

// gone records that owner is no longer running: none of its members may
// remain anywhere.
func (m *model) gone(owner string) { delete(m.owners, owner) }

func (m *model) join(owner string, k entryKey, meta string) {
	e := m.owners[owner][k]
	e.count++
	if meta != "" {
		e.meta = meta
	}
	m.owners[owner][k] = e
}

func (m *model) leave(owner string, k entryKey) {
	e := m.owners[owner][k]
	if e.count <= 1 {
		delete(m.owners[owner], k)
		return
	}
	e.count--
	m.owners[owner][k] = e
}

func (m *model) setMeta(owner string, k entryKey, meta string) {
	e := m.owners[owner][k]
	e.meta = meta
	m.owners[owner][k] = e
}

// held returns owner's members, sorted, for a random pick.
func (m *model) held(owner string) []entryKey {
	keys := slices.Collect(maps.Keys(m.owners[owner]))
	slices.SortFunc(keys, func(a, b entryKey) int {
		return strings.Compare(a.scope+"\x00"+a.group+"\x00"+a.member, b.scope+"\x00"+b.group+"\x00"+b.member)
	})
	return keys
}

// view reads every owner's members as node sees them, over the given
// scopes and groups.
func view(node *registry.Node, scopes, groups []string) (map[string]map[entryKey]entryWant, error) {
	out := make(map[string]map[entryKey]entryWant)
	for _, scope := range scopes {
		s, err := node.Scope(scope)
		if err != nil {
			return nil, err
		}
		for _, group := range groups {
			g, err := s.Members(group)
			if errors.Is(err, registry.ErrNoSuchGroup) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("members of %s/%s: %w", scope, group, err)
			}
			for _, mem := range g.Members {
				if out[mem.Node] == nil {
					out[mem.Node] = make(map[entryKey]entryWant)
				}
				out[mem.Node][entryKey{scope, group, mem.ID}] = entryWant{count: mem.Count, meta: mem.Meta["v"]}
			}
		}
	}
	return out, nil
}

// diff describes the first difference between what node sees and the
// model, or returns "".
func (m *model) diff(name string, seen map[string]map[entryKey]entryWant) string {
	owners := slices.Sorted(maps.Keys(seen))
	for owner := range m.owners {
		if !slices.Contains(owners, owner) {
			owners = append(owners, owner)
		}
	}
	slices.Sort(owners)
	for _, owner := range owners {
		want, live := m.owners[owner]
		got := seen[owner]
		if !live {
			if len(got) > 0 {
				return fmt.Sprintf("%s holds %d members of %s, which is not running (e.g. %v)", name, len(got), owner, slices.Collect(maps.Keys(got))[0])
			}
			continue
		}
		for k, w := range want {
			if g, ok := got[k]; !ok {
				return fmt.Sprintf("%s lacks %s's member %v (want %+v)", name, owner, k, w)
			} else if g != w {
				return fmt.Sprintf("%s holds %s's member %v as %+v, want %+v", name, owner, k, g, w)
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				return fmt.Sprintf("%s holds %s's member %v as %+v, which its owner does not hold", name, owner, k, g)
			}
		}
	}
	return ""
}
