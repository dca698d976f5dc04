#!/usr/bin/env python3
"""Writes an OCI image archive (an OCI image layout in a tar) from
directories, one layer each, with no registry and no container engine.

    oci_image.py --name docker.io/valkey/valkey:9.1 \
        --layer .tools/images/debian-base/rootfs --layer DIR \
        --entrypoint '["valkey-server"]' --user 999:999 --workdir /data \
        --env PATH=/usr/local/bin:/usr/bin:/bin --out valkey-9.1.oci.tar

`ctr images import` loads the archive under --name (the index's
`io.containerd.image.name`); `--layer-cache DIR` keeps each layer's
compressed tar by its directory's content, so a base shared by several
images is packed once.

The output is reproducible: the same directories give the same digests
(entries sorted by name, modification times clamped to 0, owners kept as
numbers, gzip without a name or time). What a layer may not hold: the
contents of /dev, /proc and /sys (the runtime mounts them) and sockets.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

SKIPPED_DIRS = {"dev", "proc", "sys"}


class ImageError(Exception):
    """A layer or option the archive cannot be written from."""


def _entries(root):
    """Yields (archive name, path) of everything under root; the
    directories /dev, /proc and /sys are kept, empty (the runtime mounts
    them)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        if rel in SKIPPED_DIRS:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            yield (name if rel == "." else os.path.join(rel, name)), os.path.join(dirpath, name)


def layer_tar(root):
    """The uncompressed tar of one layer directory, as bytes."""
    if not os.path.isdir(root):
        raise ImageError(f"layer {root!r} is not a directory")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arc, path in sorted(_entries(root)):
            st = os.lstat(path)
            if stat.S_ISSOCK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                continue
            info = tar.gettarinfo(path, arcname=arc)
            info.mtime = 0
            info.uname = ""
            info.gname = ""
            info.pax_headers = {}
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tree_key(root):
    """A key of a directory's content (names, modes, owners, sizes,
    mtimes, link targets): a cached layer is reused only while it holds."""
    h = hashlib.sha256()
    for arc, path in sorted(_entries(root)):
        st = os.lstat(path)
        h.update(f"{arc}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}\0{int(st.st_mtime)}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(path).encode())
    return h.hexdigest()


def packed_layer(root, cache):
    """(compressed bytes, diff id) of one layer, from the cache when the
    directory is as it was packed."""
    key = _tree_key(root) if cache else None
    if cache:
        gz_path = os.path.join(cache, key + ".tar.gz")
        id_path = os.path.join(cache, key + ".diffid")
        if os.path.exists(gz_path) and os.path.exists(id_path):
            with open(gz_path, "rb") as f, open(id_path) as g:
                return f.read(), g.read().strip()
    raw = layer_tar(root)
    diff_id = _digest(raw)
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    if cache:
        os.makedirs(cache, exist_ok=True)
        with open(gz_path + ".part", "wb") as f:
            f.write(gz)
        with open(id_path, "w") as g:
            g.write(diff_id)
        os.replace(gz_path + ".part", gz_path)
    return gz, diff_id


def _add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_image(args):
    if ":" not in args.name.rsplit("/", 1)[-1] or args.name.endswith(":latest"):
        raise ImageError(f"image name {args.name!r} must carry a tag other than latest")
    if "/" not in args.name or "." not in args.name.split("/", 1)[0]:
        raise ImageError(f"image name {args.name!r} must be named in full (registry/repository:tag)")
    layers = [packed_layer(d, args.layer_cache) for d in args.layer]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            k: v
            for k, v in {
                "User": args.user,
                "Entrypoint": json.loads(args.entrypoint) if args.entrypoint else None,
                "Cmd": json.loads(args.cmd) if args.cmd else None,
                "Env": args.env or None,
                "WorkingDir": args.workdir,
                "Labels": dict(kv.split("=", 1) for kv in args.label) or None,
            }.items()
            if v
        },
        "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
        "history": [{"created_by": f"logbook scripts/oci_image.py layer {os.path.basename(os.path.normpath(d))}"} for d in args.layer],
    }
    config_bytes = _json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(gz), "size": len(gz)}
            for gz, _ in layers
        ],
    }
    manifest_bytes = _json(manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _digest(manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": args.name,
                    "org.opencontainers.image.ref.name": args.name.rsplit(":", 1)[1],
                },
            }
        ],
    }
    part = args.out + ".part"
    with tarfile.open(part, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "index.json", _json(index))
        blobs = [config_bytes, manifest_bytes] + [gz for gz, _ in layers]
        written = set()
        for blob in blobs:
            name = "blobs/sha256/" + hashlib.sha256(blob).hexdigest()
            if name not in written:
                written.add(name)
                _add_bytes(tar, name, blob)
    os.replace(part, args.out)
    return _digest(manifest_bytes)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="the image's full name: registry/repository:tag")
    p.add_argument("--layer", action="append", required=True, help="a directory, one layer; the first is the lowest")
    p.add_argument("--layer-cache", help="a directory keeping packed layers by their content")
    p.add_argument("--entrypoint", help="JSON list")
    p.add_argument("--cmd", help="JSON list")
    p.add_argument("--user")
    p.add_argument("--workdir")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--out", required=True)
    args = p.parse_args()
    try:
        digest = write_image(args)
    except (ImageError, OSError, ValueError) as e:
        print(f"oci_image: {args.name}: {e}", file=sys.stderr)
        return 1
    print(f"{args.name} {digest} {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
