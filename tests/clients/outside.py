#!/usr/bin/env python3
"""A client outside Kubernetes, for the external-access tests.

It writes keys until a stop file appears, each write acknowledged only
once a replica has it too (``SET`` then ``WAIT 1`` on the same
connection), then reads every acknowledged key back and prints what it
saw as one JSON object.

Modes:
  cluster      redis-py's RedisCluster from the seeds: it learns the slot
               map from CLUSTER SLOTS and follows MOVED; each write goes to
               the slot's primary through the cluster client's own
               connection to that node.
  replication  redis-py's Redis at the first seed (the primary's Service).
  sentinel     redis-py's Sentinel at the seeds, asking for the primary of
               --master.

``--allow HOST`` (repeatable) makes every socket refuse any other address,
as a machine outside the pod network cannot reach one: an address a server
announces that is not external is then seen (``refused``) rather than
silently reached. ``--ca`` turns TLS on with host-name verification (the
address dialled must be in the server's certificate). The password comes
from $VALKEY_PASSWORD, never the command line.
"""

import argparse
import json
import os
import socket
import sys
import time

import redis
from redis.cluster import RedisCluster, ClusterNode
from redis.sentinel import Sentinel


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["cluster", "replication", "sentinel"], required=True)
    p.add_argument("--seed", action="append", required=True, help="host:port")
    p.add_argument("--master", default="mymaster")
    p.add_argument("--ca")
    p.add_argument("--allow", action="append", default=[])
    p.add_argument("--stop", required=True, help="stop writing once this file exists")
    p.add_argument("--progress", help="file the count of acknowledged writes is written to")
    p.add_argument("--prefix", default="outside")
    return p.parse_args()


DIALED = set()
REFUSED = set()


def guard(allowed):
    """Every TCP connection: recorded, and refused unless its host is allowed."""
    original = socket.socket.connect

    def connect(self, address):
        if isinstance(address, tuple) and self.family in (socket.AF_INET, socket.AF_INET6):
            host, port = address[0], address[1]
            DIALED.add(f"{host}:{port}")
            if allowed and host not in allowed:
                REFUSED.add(f"{host}:{port}")
                raise ConnectionRefusedError(f"outside the pod network: {host} is not reachable")
        return original(self, address)

    socket.socket.connect = connect


def split(seed):
    host, port = seed.rsplit(":", 1)
    return host.strip("[]"), int(port)


def tls_kwargs(args):
    if not args.ca:
        return {}
    return {"ssl": True, "ssl_ca_certs": args.ca, "ssl_check_hostname": True, "ssl_cert_reqs": "required"}


def main():
    args = parse_args()
    guard(set(args.allow))
    password = os.environ.get("VALKEY_PASSWORD") or None
    common = {"password": password, "socket_timeout": 3, "socket_connect_timeout": 3}
    common.update(tls_kwargs(args))
    seeds = [split(s) for s in args.seed]

    if args.mode == "cluster":
        # As an application starting beside a cluster still settling (a
        # certificate being reloaded, say): tried again for a minute.
        deadline = time.monotonic() + 60
        while True:
            try:
                cluster = RedisCluster(
                    startup_nodes=[ClusterNode(h, p) for h, p in seeds],
                    require_full_coverage=False,
                    **common,
                )
                break
            except Exception as e:  # noqa: BLE001 - said on stderr, tried again
                if time.monotonic() > deadline:
                    raise
                print(f"connecting: {type(e).__name__}: {e}", file=sys.stderr)
                time.sleep(0.5)

        def node_client(key):
            return cluster.get_redis_connection(cluster.get_node_from_key(key))

        def refresh():
            try:
                cluster.nodes_manager.initialize()
            except Exception:  # noqa: BLE001 - tried again on the next error
                pass

        reader = cluster
    elif args.mode == "replication":
        host, port = seeds[0]
        single = redis.Redis(host=host, port=port, **common)

        def node_client(_key):
            return single

        def refresh():
            pass

        reader = single
    else:
        # The Sentinels ask for the cluster's password too (`requirepass`
        # in their runtime config, core/src/resources/sentinel_script.rs)
        # and speak TLS when the data pods do: the same arguments.
        sentinel = Sentinel(seeds, sentinel_kwargs=dict(common), **common)
        primary = sentinel.master_for(args.master)

        def node_client(_key):
            return primary

        def refresh():
            pass

        reader = primary

    acked = []
    errors = 0
    last_error = ""
    i = 0
    while not os.path.exists(args.stop):
        key = f"{args.prefix}:{i}"
        try:
            pipe = node_client(key).pipeline(transaction=False)
            pipe.set(key, str(i))
            pipe.execute_command("WAIT", "1", "2000")
            ok, replicas = pipe.execute()
            if ok and int(replicas) >= 1:
                acked.append(i)
        except Exception as e:  # noqa: BLE001 - counted, the write is not acknowledged
            errors += 1
            last_error = f"{type(e).__name__}: {e}"
            refresh()
            time.sleep(0.05)
        i += 1
        if args.progress and i % 20 == 0:
            with open(args.progress + ".tmp", "w") as f:
                f.write(str(len(acked)))
            os.replace(args.progress + ".tmp", args.progress)

    missing = []
    for n in acked:
        key = f"{args.prefix}:{n}"
        for attempt in range(20):
            try:
                value = reader.get(key)
                break
            except Exception:  # noqa: BLE001 - the topology may still be settling
                refresh()
                time.sleep(0.25)
        else:
            value = None
        if value is None or int(value) != n:
            missing.append(n)

    json.dump(
        {
            "sent": i,
            "acked": len(acked),
            "missing": missing,
            "errors": errors,
            "last_error": last_error,
            "dialed": sorted(DIALED),
            "refused": sorted(REFUSED),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
