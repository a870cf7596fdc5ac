package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))

func TestClusterFlagsChooseTheMode(t *testing.T) {
	cc, err := clusterFlags{profile: "lan"}.clusterConfig("127.0.0.1:7400")
	require.NoError(t, err)
	require.Nil(t, cc, "no cluster flag: a node on its own")

	cc, err = clusterFlags{profile: "loopback", join: " 10.0.0.1:7946, ,10.0.0.2:7946", key: testKey}.clusterConfig("127.0.0.1:7400")
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:7946", "10.0.0.2:7946"}, cc.Join)
	require.Equal(t, []byte("0123456789abcdef"), cc.Key)
	require.Equal(t, "127.0.0.1:7400", cc.HTTPAddr)
	require.Equal(t, 200*time.Millisecond, cc.Membership.Gossip.ProbeInterval)

	for _, bad := range []clusterFlags{
		{profile: "lan", key: "not base64!"},
		{profile: "lan", key: base64.StdEncoding.EncodeToString([]byte("short"))},
		{profile: "wan", bind: "127.0.0.1:0"},
	} {
		_, err := bad.clusterConfig("")
		require.Error(t, err, "%+v", bad)
	}
}

func TestAgentRefusesABadClusterKey(t *testing.T) {
	err := run(context.Background(), []string{"--http", "127.0.0.1:0", "--cluster-key", "c2hvcnQ="}, nil)
	require.ErrorContains(t, err, "cluster-key")
}

// Two agents form a cluster through --join: a join on one is a member on
// the other, both report the same digest, and each lists the other among
// its nodes and overlay peers.
func TestAgentsReplicateThroughTheAPI(t *testing.T) {
	first := startAgent(t, "--name", "n1", "--gossip", "127.0.0.1:0", "--cluster-key", testKey, "--gossip-profile", "loopback", "--log-level", "warn")
	_, out := call(t, "GET", first+"/v1/nodes", "")
	gossip := out["nodes"].([]any)[0].(map[string]any)["gossip"].(string)
	second := startAgent(t, "--name", "n2", "--join", gossip, "--cluster-key", testKey, "--gossip-profile", "loopback", "--log-level", "warn")

	code, out := call(t, "POST", first+"/v1/scopes/default/join", `{"group":"/svc/db","member":"db-1"}`)
	require.Equal(t, 200, code, out)
	require.Eventually(t, func() bool {
		code, _ := call(t, "GET", second+"/v1/scopes/default/members?name=/svc/db", "")
		return code == 200
	}, 10*time.Second, 5*time.Millisecond, "the join reaches the other node")
	require.Eventually(t, func() bool {
		_, a := call(t, "GET", first+"/v1/scopes/default/digest", "")
		_, b := call(t, "GET", second+"/v1/scopes/default/digest", "")
		return a["digest"] == b["digest"] && a["members"] == float64(1) && b["members"] == float64(1)
	}, 10*time.Second, 5*time.Millisecond, "both digests equal")

	_, out = call(t, "GET", second+"/v1/nodes", "")
	var names []string
	for _, n := range out["nodes"].([]any) {
		n := n.(map[string]any)
		names = append(names, n["name"].(string)+"="+n["status"].(string))
		if n["name"] == "n1" {
			require.True(t, strings.HasPrefix(first, "http://"+n["http"].(string)), "n1 advertises its API address %v", n["http"])
		}
	}
	require.ElementsMatch(t, []string{"n1=alive", "n2=alive"}, names)
	_, out = call(t, "GET", second+"/v1/overlay", "")
	require.Equal(t, "n1", out["active"].([]any)[0].(map[string]any)["name"])
}

func TestAgentOnItsOwnHasNoPeers(t *testing.T) {
	base := startAgent(t)
	_, out := call(t, "GET", base+"/v1/nodes", "")
	require.Empty(t, out["nodes"])
	_, out = call(t, "GET", base+"/v1/overlay", "")
	require.Empty(t, out["active"])
	code, out := call(t, "GET", base+"/v1/scopes/default/digest", "")
	require.Equal(t, 200, code)
	require.Equal(t, float64(0), out["members"])
}
