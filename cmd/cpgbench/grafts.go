package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cpggo/cpg/internal/proctest"
)

// graftsSent sums the grafts the agents' broadcasts have sent, from their
// /metrics: a payload announced but not received in time is grafted, so a
// burst that waited for a graft shows here.
func graftsSent(ctx context.Context, nodes []*proctest.Node) (int64, error) {
	var total int64
	for _, n := range nodes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.API+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("%s: metrics: %w", n.Name, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			v, ok := strings.CutPrefix(sc.Text(), "cpg_broadcast_grafts_total ")
			if !ok {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				resp.Body.Close()
				return 0, fmt.Errorf("%s: grafts: %w", n.Name, err)
			}
			total += int64(f)
		}
		resp.Body.Close()
		if err := sc.Err(); err != nil {
			return 0, fmt.Errorf("%s: metrics: %w", n.Name, err)
		}
	}
	return total, nil
}
