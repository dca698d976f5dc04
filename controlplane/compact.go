package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// runCompact compacts etcd's history up to its current revision, so a
// watch from an older resourceVersion is answered 410 Gone (the tests
// check the operator's clients on it).
func runCompact(args []string) int {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:2379", "etcd's client URL")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane compact: %v\n", err)
		return 1
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, err := client.Get(ctx, "compact-probe")
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane compact: reading the revision: %v\n", err)
		return 1
	}
	rev := status.Header.Revision
	if _, err := client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		fmt.Fprintf(os.Stderr, "controlplane compact: %v\n", err)
		return 1
	}
	fmt.Printf("compacted to revision %d\n", rev)
	return 0
}
