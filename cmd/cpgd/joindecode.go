package main

// decodeQuick reads a join, leave or meta body in one pass when it is in
// the plain form clients send: one object of the known keys, each once,
// whose strings are printable ASCII without escapes. It declines (false,
// r untouched) anything else, which decodeStrict then reads the general
// way and refuses with its precise message if it must: the quick path
// never accepts what the general one refuses, nor reads anything
// differently (FuzzDecodeQuick compares them).
func (r *joinRequest) decodeQuick(data []byte) bool {
	p := quickParser{data: data}
	var out joinRequest
	var seenGroup, seenMember, seenMeta, seenLease bool
	p.space()
	if !p.take('{') {
		return false
	}
	p.space()
	if !p.take('}') {
		for {
			key, ok := p.rawString()
			if !ok {
				return false
			}
			p.space()
			if !p.take(':') {
				return false
			}
			p.space()
			var seen *bool
			switch string(key) {
			case "group":
				seen = &seenGroup
				out.Group, ok = p.str()
			case "member":
				seen = &seenMember
				out.Member, ok = p.str()
			case "lease":
				seen = &seenLease
				out.Lease, ok = p.str()
			case "meta":
				seen = &seenMeta
				out.Meta, ok = p.strMap()
			default:
				return false
			}
			if !ok || *seen {
				return false
			}
			*seen = true
			p.space()
			if p.take(',') {
				p.space()
				continue
			}
			if p.take('}') {
				break
			}
			return false
		}
	}
	p.space()
	if p.i != len(p.data) {
		return false
	}
	*r = out
	return true
}

// quickParser reads the plain subset of JSON decodeQuick accepts.
type quickParser struct {
	data []byte
	i    int
}

func (p *quickParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *quickParser) take(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// rawString reads a string of printable ASCII without escapes, and returns
// its bytes within data.
func (p *quickParser) rawString() ([]byte, bool) {
	if !p.take('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.data); p.i++ {
		switch c := p.data[p.i]; {
		case c == '"':
			s := p.data[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, false
		}
	}
	return nil, false
}

func (p *quickParser) str() (string, bool) {
	s, ok := p.rawString()
	return string(s), ok
}

// strMap reads an object of strings; {} is an empty map, not nil, as
// encoding/json reads it (a meta call with {} clears the metadata).
func (p *quickParser) strMap() (map[string]string, bool) {
	if !p.take('{') {
		return nil, false
	}
	m := make(map[string]string)
	p.space()
	if p.take('}') {
		return m, true
	}
	for {
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if !p.take(':') {
			return nil, false
		}
		p.space()
		value, ok := p.str()
		if _, dup := m[key]; !ok || dup {
			return nil, false
		}
		m[key] = value
		p.space()
		if p.take(',') {
			p.space()
			continue
		}
		if p.take('}') {
			return m, true
		}
		return nil, false
	}
}
