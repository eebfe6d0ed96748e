#!/usr/bin/env bash
# Renders every kustomize overlay under k8s/overlays with `kubectl kustomize` and validates each
# object against the Kubernetes OpenAPI schemas with `kubernetes-validate --strict`. Fails on any
# error, and on any object whose apiVersion/kind has no schema, except the custom resources that
# scripts/k8s_check.py checks structurally instead (KEDA, Gateway API, Prometheus Operator). That
# script also checks what no schema can: scaled Deployments without replicas, NetworkPolicy
# selectors that select something, pinned images, Secrets mounted as files.
#
#   scripts/k8s-validate.sh              validate k8s/ (or $K8S_DIR)
#   scripts/k8s-validate.sh --self-test  also prove it fails on broken copies of k8s/
#
# Needs kubectl with kustomize v4 or newer ($KUBECTL, default `kubectl`); fails with a clear
# message otherwise. Python tools go to .build-tools/ (git-ignored): a venv with
# kubernetes-validate and PyYAML from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.32.0
KUBERNETES_VALIDATE_VERSION=1.37.0
TOOLS=.build-tools
VENV=$TOOLS/venv
K8S_DIR=${K8S_DIR:-k8s}

install_tools() {
    if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KUBERNETES_VALIDATE_VERSION"; then
        echo "k8s-validate: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check \
            "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" PyYAML
    fi
}

KUBECTL=${KUBECTL:-kubectl}

# Exits unless $KUBECTL is there and embeds kustomize v4+ (`patches`, `images`, `$patch: delete`).
require_kustomize() {
    local version
    if ! version=$("$KUBECTL" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\)\..*/\1/p') \
        || [[ -z "$version" ]]; then
        echo "k8s-validate: needs kubectl with kustomize v4 or newer; '$KUBECTL version --client' failed or names no kustomize." >&2
        echo "  Install kubectl (https://kubernetes.io/docs/tasks/tools/), or set KUBECTL to its path." >&2
        exit 2
    fi
    if (( version < 4 )); then
        echo "k8s-validate: kubectl's kustomize is v$version; v4 or newer is needed (kubectl 1.21+)." >&2
        exit 2
    fi
}

validate() {
    local work="${VALIDATE_WORK:-$TOOLS/k8s-validate}" status=0 overlays=()
    require_kustomize
    rm -rf "$work" && mkdir -p "$work"
    echo "k8s-validate: rendering with $KUBECTL kustomize; validating against Kubernetes $K8S_VERSION (strict)"
    for overlay in "$K8S_DIR"/overlays/*/; do
        local name
        name=$(basename "$overlay")
        if ! "$KUBECTL" kustomize "$overlay" > "$work/$name.yaml" 2> "$work/$name.render.log"; then
            echo "FAIL $name: could not be rendered"; sed 's/^/  /' "$work/$name.render.log"; status=1; continue
        fi
        if ! "$VENV/bin/python" scripts/k8s_check.py "$work/$name.yaml" "$work/$name" > "$work/$name.check.log"; then
            echo "FAIL $name:"; grep '^FAIL' "$work/$name.check.log" | sed 's/^FAIL /  /'; status=1
        fi
        echo "     $name: $(grep -c '^SKIPPED-SCHEMA.*passed' "$work/$name.check.log") custom resources checked structurally"
        overlays+=("$name")
    done
    [[ ${#overlays[@]} -gt 0 ]] || return 1

    # Most objects are the same in every overlay (the base's): each distinct object is validated
    # once, under the first overlay that has it, and counted as shared in the others.
    declare -A seen=() shared=()
    local file digest
    for file in "$work"/*/*.yaml; do
        digest=$(md5sum < "$file" | cut -d ' ' -f 1)
        if [[ -n "${seen[$digest]:-}" ]]; then
            rm "$file"; name=$(basename "$(dirname "$file")"); shared[$name]=$(( ${shared[$name]:-0} + 1 ))
        else
            seen[$digest]=1
        fi
    done

    # One run over every overlay's objects: per object and loading the schemas is the cost.
    local report="$work/report"
    "$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "$work"/*/*.yaml > "$report" 2>&1 || status=1
    for name in "${overlays[@]}"; do
        # An unknown apiVersion/kind is only a WARN to kubernetes-validate; here it fails too.
        if grep -v '^INFO' "$report" | grep -q "/$name/"; then
            echo "FAIL $name:"; grep -v '^INFO' "$report" | grep "/$name/" | sed 's/^/  /'; status=1
        else
            echo "ok   $name: $(grep -c "^INFO .*/$name/.* passed" "$report") objects valid, ${shared[$name]:-0} more the same as in an overlay above"
        fi
    done
    if grep -v '^INFO' "$report" | grep -qv "^[A-Z]* $work/"; then
        echo "FAIL kubernetes-validate:"; grep -v '^INFO' "$report" | grep -v "^[A-Z]* $work/" | sed 's/^/  /'; status=1
    fi
    return $status
}

# Breaks copies of k8s/ in ways a reviewer could miss and checks that each one fails. The copies
# are validated in the background, one per CPU at a time; the results are printed in order.
self_test() {
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/k8s-validate-selftest.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    local failures=0 caught=0 cases=0 parallel
    parallel=$(nproc)
    expect_failure() { # expect_failure DESCRIPTION SED-SCRIPT FILE
        cases=$((cases + 1))
        local dir="$scratch/$cases"
        mkdir -p "$dir" && cp -r "$K8S_DIR" "$dir/k8s"
        printf '%s\n' "$1" > "$dir/description"
        sed -i "$2" "$dir/k8s/$3"
        if cmp -s "$K8S_DIR/$3" "$dir/k8s/$3"; then
            echo unchanged > "$dir/result"; return
        fi
        while (( $(jobs -rp | wc -l) >= parallel )); do wait -n || true; done
        (
            if K8S_DIR="$dir/k8s" VALIDATE_WORK="$dir/work" validate > "$dir/out" 2>&1; then
                echo missed > "$dir/result"
            else
                echo caught > "$dir/result"
            fi
        ) &
    }
    expect_failure "unknown field in a pod spec" \
        's/^      terminationGracePeriodSeconds: 30$/&\n      terminationGraceSeconds: 30/' base/worker.yaml
    expect_failure "string where an integer belongs" \
        's/^  revisionHistoryLimit: 5$/  revisionHistoryLimit: "five"/' base/worker.yaml
    expect_failure "apiVersion with no schema" \
        '0,/^apiVersion: apps\/v1$/s//apiVersion: apps\/v2/' base/redis.yaml
    expect_failure "misspelt field in a generated function manifest" \
        's/^            httpGet:$/            httpGit:/' base/functions/get-thread.yaml
    expect_failure "replicas on a Deployment its HorizontalPodAutoscaler owns" \
        's/^  revisionHistoryLimit: 5$/  replicas: 2\n&/' base/functions/get-thread.yaml
    expect_failure "HTTPRoute aimed at a missing Service" \
        's/^        - name: get-thread$/        - name: get-threads/' base/functions/get-thread.yaml
    expect_failure "misspelt field in an HTTPRoute" \
        's/^  parentRefs:$/  parentRef:/' base/functions/get-thread.yaml
    expect_failure "HTTPRoute on a Gateway that does not exist" \
        's/^  name: threadweave$/  name: threadweaves/' overlays/local/gateway.yaml
    expect_failure "typo in a NetworkPolicy's pod selector" \
        's/^              threadweave.io\/redis-client: "true"$/              threadweave.io\/redis-clients: "true"/' base/network-policies.yaml
    expect_failure "NetworkPolicy port named by no pod" \
        's/^          port: http$/          port: metrics/' base/network-policies.yaml
    expect_failure "image tag latest" \
        's/^    newTag: "[^"]*"$/    newTag: latest/' overlays/local/kustomization.yaml
    expect_failure "a password written into a pod's environment" \
        's/^            - name: LOG_FORMAT$/            - name: REDIS_PASSWORD\n              value: hunter2\n&/' base/worker.yaml
    expect_failure "ServiceMonitor scraping a port no Service has" \
        's/^    - port: http$/    - port: metrics/' overlays/production/monitoring.yaml
    expect_failure "ScaledObject aimed at a missing Deployment" \
        's/^    name: worker$/    name: workers/' overlays/keda/worker-scaledobject.yaml
    expect_failure "an HPA and a ScaledObject on one Deployment" \
        's/^      \$patch: delete$/      $patch: merge/' overlays/keda/kustomization.yaml
    expect_failure "JSON patch on a path that does not exist" \
        's#/spec/template/spec/containers/0/resources#/spec/template/spec/sidecars/0/resources#' overlays/local/kustomization.yaml

    wait
    local i description
    for ((i = 1; i <= cases; i++)); do
        description=$(cat "$scratch/$i/description")
        case $(cat "$scratch/$i/result") in
            caught)
                # The first reasons given, so a case caught for the wrong reason shows.
                caught=$((caught + 1)); echo "self-test: caught: $description"
                grep -E '^  ' "$scratch/$i/out" | grep -v 'custom resources checked' | sort -u | head -2 | sed 's/^/    /' ;;
            unchanged) echo "self-test: the edit for '$description' changed nothing"; failures=$((failures + 1)) ;;
            *) echo "self-test: NOT caught: $description"; failures=$((failures + 1)) ;;
        esac
    done

    # Without a usable kubectl the validation stops with a message that says so.
    if (KUBECTL=/nonexistent/kubectl validate) > "$scratch/out" 2>&1; then
        echo "self-test: NOT caught: missing kubectl"; failures=$((failures + 1))
    elif grep -q 'needs kubectl with kustomize v4' "$scratch/out"; then
        caught=$((caught + 1)); echo "self-test: caught: missing kubectl"; sed -n 1p "$scratch/out" | sed 's/^/    /'
    else
        echo "self-test: missing kubectl failed without saying why"; failures=$((failures + 1))
    fi
    echo "self-test: $caught broken copies caught, $failures not"
    return $((failures > 0))
}

install_tools
validate
if [[ "${1:-}" == --self-test ]]; then
    self_test
    echo "self-test: passed"
fi
