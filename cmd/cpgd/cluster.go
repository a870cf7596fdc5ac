package main

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/cpggo/cpg/membership"
	"github.com/cpggo/cpg/registry"
)

// clusterFlags are the command line's cluster settings, as given.
type clusterFlags struct {
	bind, gossip, join, key, profile string
}

// gossipProfiles name the failure detector's timings cpgd offers: a LAN's
// (memberlist's defaults) and one host's (tests, development), whose probes
// and suspicion are an order of magnitude shorter.
var gossipProfiles = map[string]func() membership.GossipConfig{
	"lan":      membership.DefaultGossipConfig,
	"loopback": membership.LoopbackGossipConfig,
}

// clusterConfig turns the flags into the node's cluster settings; nil when
// none of bind, gossip, join and key is set, so a bare cpgd runs one node.
func (f clusterFlags) clusterConfig(httpAddr string) (*registry.ClusterConfig, error) {
	profile, ok := gossipProfiles[f.profile]
	if !ok {
		return nil, fmt.Errorf("--gossip-profile %q: want lan or loopback", f.profile)
	}
	if f.bind == "" && f.gossip == "" && f.join == "" && f.key == "" {
		return nil, nil
	}
	cc := &registry.ClusterConfig{
		Bind: f.bind, Gossip: f.gossip, HTTPAddr: httpAddr,
		Membership: membership.NodeConfig{Gossip: profile()},
	}
	for _, addr := range strings.Split(f.join, ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			cc.Join = append(cc.Join, addr)
		}
	}
	if f.key != "" {
		key, err := base64.StdEncoding.DecodeString(f.key)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key: not base64: %w", err)
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("--cluster-key: %d bytes once decoded, want 16, 24 or 32", n)
		}
		cc.Key = key
	}
	return cc, nil
}
