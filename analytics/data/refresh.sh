#!/usr/bin/env bash
# Refreshes the maintained data the sidecar's enrichment is built on, and the
# public corpora its accuracy is measured on, from the npm registry and PyPI.
# The one place these files come from; run it, review the diff, run
#   cargo run -p analytics --release --example accuracy
# and commit data, corpora and the README's table together.
#
#   analytics/data/refresh.sh                 # the versions pinned below
#   ISBOT=5.2.4 UAP_CORE=0.19.0 analytics/data/refresh.sh
#
# Needs npm, node, pip and python3 with PyYAML (the regexes and fixtures are YAML).
set -euo pipefail

ISBOT="${ISBOT:-5.2.3}"                          # npm isbot: bot patterns
UAP_CORE="${UAP_CORE:-0.18.0}"                   # npm uap-core: regexes.yaml
CRAWLERS="${CRAWLERS:-1.60.0}"                   # npm crawler-user-agents: corpus
DEVICE_DETECTOR="${DEVICE_DETECTOR:-6.5.1}"      # PyPI device-detector: Matomo's labelled fixtures

here="$(cd "$(dirname "$0")" && pwd)"
data="$here"
corpora="$here/../corpora"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
for spec in "isbot@$ISBOT" "uap-core@$UAP_CORE" "crawler-user-agents@$CRAWLERS"; do
  name="${spec%@*}"
  mkdir -p "$name"
  tar xzf "$(npm pack --silent "$spec")" -C "$name"
done
pip download --quiet --no-deps --no-binary :all: "device-detector==$DEVICE_DETECTOR" -d dd
mkdir -p dd/src && tar xzf dd/*.tar.gz -C dd/src
fixtures="$(echo dd/src/*/device_detector/tests/fixtures/upstream)"

# Bots: isbot's pattern list, exactly as the package exports it.
node -e 'process.stdout.write(JSON.stringify(require(process.argv[1]).list, null, 1) + "\n")' \
  "$work/isbot/package/index.js" > "$data/isbot-patterns.json"
cp isbot/package/LICENSE "$data/isbot.LICENSE"

# Browsers, OS, devices: uap-core's regexes.yaml as JSON (serde_json is already
# a dependency; the maintained YAML crates are not).
python3 - uap-core/package/regexes.yaml "$data/uap-regexes.json" <<'PY'
import json, sys, yaml
doc = yaml.load(open(sys.argv[1]), Loader=yaml.SafeLoader)
json.dump(doc, open(sys.argv[2], "w"), indent=0, ensure_ascii=False)
PY
cp uap-core/package/LICENSE "$data/uap-core.LICENSE"

# Device classes by model: Matomo device-detector's device database (the
# regexes the Python port ships), reduced to what a class needs. Brands keep
# Matomo's order (first match wins), each with its models in order, each
# model's type resolved (its own, else the brand's); a brand's models after
# the last whose type differs from the brand's are left out, since they would
# give the brand's type anyway.
python3 - "$(echo dd/src/*/device_detector/regexes/upstream/device)" "$data/device-models.json" <<'PY'
import json, os, sys, yaml
src, out = sys.argv[1:3]
brands = []
for brand, e in (yaml.load(open(os.path.join(src, "mobiles.yml")), Loader=yaml.CSafeLoader) or {}).items():
    default = e.get("device") or ""
    models = [[m["regex"], m.get("device") or default] for m in e.get("models") or []]
    last = max((i for i, m in enumerate(models) if m[1] != default), default=-1)
    brands.append({"brand": str(brand), "regex": e["regex"], "device": default,
                   "models": models[: last + 1]})
json.dump(brands, open(out, "w"), indent=0, ensure_ascii=False)
PY
cp /usr/share/common-licenses/LGPL-3 "$data/device-detector.LICENSE"

cat > "$data/VERSIONS" <<V
isbot $ISBOT (npm)
uap-core $UAP_CORE (npm)
device-detector $DEVICE_DETECTOR (PyPI; Matomo device-detector's device database): device-models.json
V

# Corpora, as TSV (tabs and line breaks in agents become spaces).
python3 - crawler-user-agents/package/crawler-user-agents.json "$fixtures" "$corpora" <<'PY'
import glob, json, os, sys, yaml

crawlers, fixtures, out = sys.argv[1:4]
clean = lambda s: " ".join(str(s or "").split("\t")).replace("\n", " ").replace("\r", " ")

with open(os.path.join(out, "crawlers.tsv"), "w") as f:
    f.write("pattern\tuser_agent\n")
    for entry in json.load(open(crawlers)):
        for ua in entry.get("instances", []):
            f.write(f"{clean(entry['pattern'])}\t{clean(ua)}\n")

# Matomo's fixtures: every labelled agent of the small classes, every n-th of
# the large ones (they are mostly obscure Android devices), so the file stays
# about 1.5 MB. devices-heldout.tsv is another n-th of the large ones
# (disjoint: other positions), never read while tuning the rules.
every = {"smartphone": 8, "tablet": 5, "tv": 6}
heldout_at = {"smartphone": 4, "tablet": 2, "tv": 3}
header = "device_type\tclient_type\tclient\tos\tuser_agent\n"
with open(os.path.join(out, "devices.tsv"), "w") as f, \
     open(os.path.join(out, "devices-heldout.tsv"), "w") as held:
    f.write(header)
    held.write(header)
    for path in sorted(glob.glob(os.path.join(fixtures, "*.yml"))):
        base = os.path.basename(path)
        if base.startswith(("bots", "clienthints")):
            continue
        kind = base.rsplit(".", 1)[0].split("-")[0]
        n = 0
        for e in yaml.load(open(path), Loader=yaml.CSafeLoader) or []:
            n += 1
            position = n % every.get(kind, 1)
            if position == 0:
                to = f
            elif position == heldout_at.get(kind):
                to = held
            else:
                continue
            client = e.get("client") or {}
            os_ = e.get("os") if isinstance(e.get("os"), dict) else {}
            device = e.get("device") or {}
            to.write("\t".join(clean(v) for v in (
                device.get("type"), client.get("type"), client.get("name"),
                os_.get("name"), e["user_agent"])) + "\n")

with open(os.path.join(out, "matomo-bots.tsv"), "w") as f:
    f.write("bot\tcategory\tuser_agent\n")
    for e in yaml.load(open(os.path.join(fixtures, "bots.yml")), Loader=yaml.CSafeLoader):
        bot = e.get("bot") or {}
        f.write(f"{clean(bot.get('name'))}\t{clean(bot.get('category'))}\t{clean(e['user_agent'])}\n")
PY
cp crawler-user-agents/package/LICENSE "$corpora/crawler-user-agents.LICENSE"
# The fixtures are Matomo device-detector's (LGPL-3.0-or-later); the sdist of
# the Python port does not ship the text, Debian's copy of it is used.
cp /usr/share/common-licenses/LGPL-3 "$corpora/device-detector-fixtures.LICENSE"
cat > "$corpora/VERSIONS" <<V
crawler-user-agents $CRAWLERS (npm): crawlers.tsv
device-detector $DEVICE_DETECTOR (PyPI; Matomo device-detector's fixtures): devices.tsv, devices-heldout.tsv, matomo-bots.tsv
V
echo "refreshed: $(cat "$data/VERSIONS" "$corpora/VERSIONS" | tr '\n' ';')"
