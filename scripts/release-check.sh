#!/usr/bin/env bash
# `make release-check`: what can be checked here of the release pipeline
# (.github/workflows/release.yml) without GitHub, a registry or a
# container engine:
#
#   (a) the workflows pass actionlint (syntax, expressions, job needs,
#       action inputs, and shellcheck of their scripts when installed);
#   (b) the chart packaged as the workflow packages it (`helm package`)
#       lints strictly and renders, and its version and appVersion are the
#       workspace's version (the tag the workflow accepts is v<that>);
#   (c) the image the workflow builds is the one `make images` builds:
#       the same name scheme (ghcr.io/logbook-dev/logbook:<version>), from
#       the Dockerfile, whose entrypoint, command and user are those of
#       .tools/images/logbook-operator.oci.tar's config;
#   (d) the krew manifest (plugins/valkey.yaml) has krew's shape, a
#       platform for each archive the workflow builds, named as the
#       workflow names them, and only the placeholders the workflow fills;
#   (e) the workflow's own scripts run here: its tag check, and its
#       checksums and krew manifest step on stand-in archives.
#
# Tools: .tools/bin/actionlint (`make setup`), .tools/bin/helm, python3
# with PyYAML. Each failure says what differs; the script exits 1 after
# running every check.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
HELM="${HELM:-$ROOT/.tools/bin/helm}"
ACTIONLINT="${ACTIONLINT:-$ROOT/.tools/bin/actionlint}"
WORKFLOW=.github/workflows/release.yml
MANIFEST=plugins/valkey.yaml
ARCHIVE="${OPERATOR_ARCHIVE:-$ROOT/.tools/images/logbook-operator.oci.tar}"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
failed=0
say() { printf 'release-check: %s\n' "$*"; }
fail() { say "FAILED: $*"; failed=1; }

[ -x "$ACTIONLINT" ] || { say "missing $ACTIONLINT: run make setup"; exit 1; }
[ -x "$HELM" ] || { say "missing $HELM: run make setup"; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { say "python3 has no PyYAML: run make setup"; exit 1; }

# (a)
if "$ACTIONLINT" -no-color .github/workflows/*.yml; then
	say "actionlint: the workflows are clean"
else
	fail "actionlint found problems in the workflows (above)"
fi

# (b)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"
chart_field() { sed -n "s/^$1: *\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" charts/logbook/Chart.yaml; }
for field in version appVersion; do
	got=$(chart_field "$field")
	[ "$got" = "$VERSION" ] || fail "charts/logbook/Chart.yaml $field is '$got', not the workspace's version $VERSION: the release of tag v$VERSION would refuse it"
done
if "$HELM" package charts/logbook --destination "$work/dist" >"$work/package.log" 2>&1; then
	package="$work/dist/logbook-$VERSION.tgz"
	if [ ! -f "$package" ]; then
		fail "helm package made $(ls "$work/dist"), not logbook-$VERSION.tgz (the file the workflow pushes)"
	elif ! "$HELM" lint --strict "$package" >"$work/lint.log" 2>&1; then
		cat "$work/lint.log"; fail "helm lint --strict of the packaged chart"
	elif ! "$HELM" template logbook "$package" --namespace logbook-system >"$work/rendered.yaml" 2>"$work/template.log"; then
		cat "$work/template.log"; fail "helm template of the packaged chart"
	else
		image=$(sed -n 's/^ *image: "\(ghcr.io[^"]*\)"$/\1/p' "$work/rendered.yaml" | head -n 1)
		[ "$image" = "ghcr.io/logbook-dev/logbook:$VERSION" ] \
			|| fail "the packaged chart runs '$image', not ghcr.io/logbook-dev/logbook:$VERSION"
		listing=$(tar -tzf "$package")
		for must in values.schema.json README.md crds/valkeycluster.yaml templates/NOTES.txt; do
			grep -qx "logbook/$must" <<<"$listing" || fail "the packaged chart lacks $must"
		done
		say "chart: logbook-$VERSION.tgz packaged, lints strictly, renders $image"
	fi
else
	cat "$work/package.log"; fail "helm package charts/logbook"
fi

# (c) and (d), read with PyYAML.
python3 - "$WORKFLOW" "$MANIFEST" "$ARCHIVE" "$VERSION" <<'PY' || failed=1
import json, re, sys, tarfile
import yaml

workflow_path, manifest_path, archive_path, version = sys.argv[1:]
problems = []
workflow = yaml.safe_load(open(workflow_path))
jobs = workflow["jobs"]
image_name = workflow.get("env", {}).get("IMAGE")
if image_name != "ghcr.io/logbook-dev/logbook":
    problems.append(f"{workflow_path}: env.IMAGE is {image_name!r}, not ghcr.io/logbook-dev/logbook (the chart's image.repository and make images' name)")
build = [s for s in jobs["image"]["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action")]
if len(build) != 1:
    problems.append(f"{workflow_path}: the image job has {len(build)} docker/build-push-action steps, not one")
else:
    w = build[0]["with"]
    if w.get("file") != "Dockerfile":
        problems.append(f"{workflow_path}: the image is built from {w.get('file')!r}, not the Dockerfile")
    if set(str(w.get("platforms", "")).split(",")) != {"linux/amd64", "linux/arm64"}:
        problems.append(f"{workflow_path}: platforms {w.get('platforms')!r}, not linux/amd64,linux/arm64")
    if w.get("tags") != "${{ env.IMAGE }}:${{ needs.check.outputs.version }}":
        problems.append(f"{workflow_path}: the image is tagged {w.get('tags')!r}, not <IMAGE>:<version> as make images names it")
    if w.get("push") is not True:
        problems.append(f"{workflow_path}: the image build does not push")

# The Dockerfile's runtime stage: what the image runs, and as whom.
dockerfile = open("Dockerfile").read()
runtime = dockerfile.split("\nFROM ")[-1]
def instruction(name):
    found = re.findall(rf"^{name} (.+)$", runtime, re.M)
    return found[-1].strip() if found else None
want = {
    "Entrypoint": json.loads(instruction("ENTRYPOINT") or "null"),
    "Cmd": json.loads(instruction("CMD") or "null"),
    "User": instruction("USER"),
}
try:
    archive = tarfile.open(archive_path)
except (FileNotFoundError, tarfile.TarError) as e:
    problems.append(f"{archive_path}: {e}: run make images (or make test-images) first")
else:
    index = json.load(archive.extractfile("index.json"))
    manifest = index["manifests"][0]
    name = manifest.get("annotations", {}).get("io.containerd.image.name")
    if name != f"ghcr.io/logbook-dev/logbook:{version}":
        problems.append(f"{archive_path} is named {name!r}, not ghcr.io/logbook-dev/logbook:{version} as the workflow tags it")
    blob = lambda digest: json.load(archive.extractfile("blobs/sha256/" + digest.split(":", 1)[1]))
    config = blob(blob(manifest["digest"])["config"]["digest"])["config"]
    for key, value in want.items():
        if config.get(key) != value:
            problems.append(f"the image's {key}: make images builds {config.get(key)!r}, the Dockerfile says {value!r}")
    if not problems:
        print(f"release-check: image: {name}, entrypoint {config['Entrypoint']} {config['Cmd']}, user {config['User']}: the Dockerfile's and make images' agree")

# (d) The krew manifest against the workflow's archives.
text = open(manifest_path).read()
placeholders = set(re.findall(r"\{\{([A-Za-z0-9_]+)\}\}", text))
plugin = yaml.safe_load(text)
matrix = jobs["tools"]["strategy"]["matrix"]["include"]
platforms = {(m["os"], m["arch"]) for m in matrix}
wanted_placeholders = {"VERSION"} | {f"SHA256_{o}_{a}" for o, a in platforms}
if placeholders != wanted_placeholders:
    problems.append(f"{manifest_path}: placeholders {sorted(placeholders)}, the workflow fills {sorted(wanted_placeholders)}")
filled = set(re.findall(r"\{\{SHA256_\$\{platform\}\}\}|SHA256_\$\{platform\}", open(workflow_path).read()))
if not filled:
    problems.append(f"{workflow_path}: the release job does not fill the manifest's SHA256_<os>_<arch> placeholders")
if plugin.get("apiVersion") != "krew.googlecontainertools.github.com/v1alpha2" or plugin.get("kind") != "Plugin":
    problems.append(f"{manifest_path}: not a krew Plugin (apiVersion krew.googlecontainertools.github.com/v1alpha2, kind Plugin)")
if plugin.get("metadata", {}).get("name") != "valkey":
    problems.append(f"{manifest_path}: metadata.name is not valkey (the plugin is `kubectl valkey`)")
spec = plugin.get("spec", {})
for field in ["version", "homepage", "shortDescription", "description", "platforms"]:
    if not spec.get(field):
        problems.append(f"{manifest_path}: spec.{field} is missing")
if spec.get("version") != "v{{VERSION}}":
    problems.append(f"{manifest_path}: spec.version is {spec.get('version')!r}, not v{{{{VERSION}}}}")
if len(spec.get("shortDescription", "")) > 50:
    problems.append(f"{manifest_path}: spec.shortDescription is longer than the 50 characters krew's index asks for")
seen = set()
for i, p in enumerate(spec.get("platforms", [])):
    labels = p.get("selector", {}).get("matchLabels", {})
    key = (labels.get("os"), labels.get("arch"))
    seen.add(key)
    uri = f"https://github.com/logbook-dev/logbook/releases/download/v{{{{VERSION}}}}/kubectl-valkey_{key[0]}_{key[1]}.tar.gz"
    if p.get("uri") != uri:
        problems.append(f"{manifest_path}: platforms[{i}].uri is {p.get('uri')!r}, not {uri} (the archive the workflow attaches)")
    if p.get("sha256") != f"{{{{SHA256_{key[0]}_{key[1]}}}}}":
        problems.append(f"{manifest_path}: platforms[{i}].sha256 is not the placeholder of {key[0]}_{key[1]}")
    if p.get("bin") != "kubectl-valkey":
        problems.append(f"{manifest_path}: platforms[{i}].bin is not kubectl-valkey")
if seen != platforms:
    problems.append(f"{manifest_path}: platforms {sorted(seen)}, the workflow builds {sorted(platforms)}")
archive_step = [s for s in jobs["tools"]["steps"] if s.get("name") == "Archive"]
if not archive_step or "${bin}_${OS}_${ARCH}.tar.gz" not in archive_step[0].get("run", ""):
    problems.append(f"{workflow_path}: the tools job's Archive step does not name archives <binary>_<os>_<arch>.tar.gz")
if not problems:
    print(f"release-check: krew manifest: {len(seen)} platforms, as the workflow builds and names them")
for p in problems:
    print(f"release-check: FAILED: {p}")
sys.exit(1 if problems else 0)
PY

# (e) The workflow's own scripts, run here as the runner would run them:
# the tag check (the workspace's tag passes, another fails), and the
# checksums and krew manifest step on stand-in archives (the manifest
# filled with their sums, no placeholder left, still a krew Plugin).
step() { # job, step name: the step's `run`
	python3 -c 'import sys, yaml
jobs = yaml.safe_load(open(sys.argv[1]))["jobs"]
print(next(s["run"] for s in jobs[sys.argv[2]]["steps"] if s.get("name") == sys.argv[3]))' "$WORKFLOW" "$1" "$2"
}
tag_check=$(step check "The tag is the workspace's version")
if ! (cd "$ROOT" && TAG="v$VERSION" GITHUB_OUTPUT="$work/output" bash -euo pipefail -c "$tag_check" >"$work/tag.log" 2>&1); then
	cat "$work/tag.log"; fail "the workflow's tag check refuses v$VERSION"
elif ! grep -qx "version=$VERSION" "$work/output"; then
	fail "the workflow's tag check does not output version=$VERSION"
elif (cd "$ROOT" && TAG="v$VERSION.1" GITHUB_OUTPUT="$work/output" bash -euo pipefail -c "$tag_check" >"$work/tag.log" 2>&1); then
	fail "the workflow's tag check accepts v$VERSION.1"
else
	say "the workflow's tag check passes v$VERSION and refuses v$VERSION.1"
fi
sums=$(step release "Checksums and the krew manifest")
mkdir -p "$work/run/dist" "$work/run/plugins"
cp "$MANIFEST" "$work/run/plugins/valkey.yaml"
for platform in linux_amd64 linux_arm64 darwin_amd64 darwin_arm64; do
	for bin in kubectl-valkey logbook; do
		echo "$bin $platform" | gzip -n >"$work/run/dist/${bin}_${platform}.tar.gz"
	done
done
[ -n "${package:-}" ] && cp "$package" "$work/run/dist/"
if ! (cd "$work/run" && VERSION="$VERSION" bash -euo pipefail -c "$sums" >"$work/sums.log" 2>&1); then
	cat "$work/sums.log"; fail "the workflow's checksums and krew manifest step failed on stand-in archives"
elif ! python3 - "$work/run/dist/valkey.yaml" "$work/run/dist/SHA256SUMS" "$VERSION" <<'PY'
import sys, yaml
manifest, sums, version = sys.argv[1:]
plugin = yaml.safe_load(open(manifest))
table = dict(reversed(line.split()) for line in open(sums))
assert "{{" not in open(manifest).read(), "placeholders left"
assert plugin["spec"]["version"] == f"v{version}", plugin["spec"]["version"]
for p in plugin["spec"]["platforms"]:
    name = p["uri"].rsplit("/", 1)[1]
    assert p["sha256"] == table[name], f"{name}: {p['sha256']} is not its sum {table[name]}"
    assert f"/download/v{version}/" in p["uri"], p["uri"]
PY
then
	fail "the krew manifest the workflow fills is wrong (above)"
else
	say "the workflow's release step fills the krew manifest with v$VERSION and each archive's sha256"
fi

if [ "$failed" -ne 0 ]; then
	say "failed (above)"
	exit 1
fi
say "passed"
