#!/usr/bin/env bash
# Renders every kustomize overlay under k8s/overlays and validates each object against the
# Kubernetes OpenAPI schemas with `kubernetes-validate --strict`. Fails on any error, and on
# any object whose apiVersion/kind has no schema, except the custom resources listed in
# scripts/k8s_manifests.py (KEDA's ScaledObject), which get a structural check instead.
#
#   scripts/k8s-validate.sh              validate k8s/ (or $K8S_DIR)
#   scripts/k8s-validate.sh --self-test  also prove it fails on broken copies of k8s/, and that
#                                        the fallback renderer agrees with real kustomize
#
# Tools go to .build-tools/ (git-ignored): a venv with kubernetes-validate and PyYAML from PyPI.
# Renderer, first found: `kustomize` on PATH, `kubectl kustomize` when its kustomize is v4 or
# newer, else scripts/k8s_manifests.py's subset renderer. KUSTOMIZE_RENDERER=subset forces the last.
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

renderer() {
    if [[ "${KUSTOMIZE_RENDERER:-}" == subset ]]; then
        echo subset
    elif [[ -n "${KUSTOMIZE_RENDERER:-}" ]]; then
        echo "$KUSTOMIZE_RENDERER"
    elif command -v kustomize >/dev/null; then
        echo kustomize
    elif command -v kubectl >/dev/null \
        && kubectl version --client 2>/dev/null | grep -Eq '^Kustomize Version: v([4-9]|[1-9][0-9])'; then
        echo kubectl
    else
        echo subset
    fi
}

render() { # render RENDERER DIR
    case "$1" in
        kustomize) kustomize build "$2" ;;
        kubectl) kubectl kustomize "$2" ;;
        subset) "$VENV/bin/python" scripts/k8s_manifests.py build "$2" ;;
        *) echo "k8s-validate: unknown renderer $1" >&2; return 2 ;;
    esac
}

validate() {
    local work="$TOOLS/k8s-validate" which status=0 overlays=()
    which=$(renderer)
    rm -rf "$work" && mkdir -p "$work"
    echo "k8s-validate: rendering with $which; validating against Kubernetes $K8S_VERSION (strict)"
    for overlay in "$K8S_DIR"/overlays/*/; do
        local name
        name=$(basename "$overlay")
        if ! render "$which" "$overlay" > "$work/$name.yaml" 2> "$work/$name.render.log"; then
            echo "FAIL $name: could not be rendered"; sed 's/^/  /' "$work/$name.render.log"; status=1; continue
        fi
        "$VENV/bin/python" scripts/k8s_manifests.py split "$work/$name.yaml" "$work/$name" || status=1
        overlays+=("$name")
    done
    [[ ${#overlays[@]} -gt 0 ]] || return 1

    # One run over every overlay's objects: loading the schemas is most of the cost.
    local report="$work/report"
    "$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "$work"/*/*.yaml > "$report" 2>&1 || status=1
    for name in "${overlays[@]}"; do
        # An unknown apiVersion/kind is only a WARN to kubernetes-validate; here it fails too.
        if grep -v '^INFO' "$report" | grep -q "/$name/"; then
            echo "FAIL $name:"; grep -v '^INFO' "$report" | grep "/$name/" | sed 's/^/  /'; status=1
        else
            echo "ok   $name: $(grep -c "^INFO .*/$name/.* passed" "$report") objects valid"
        fi
    done
    if grep -v '^INFO' "$report" | grep -qv "^[A-Z]* $work/"; then
        echo "FAIL kubernetes-validate:"; grep -v '^INFO' "$report" | grep -v "^[A-Z]* $work/" | sed 's/^/  /'; status=1
    fi
    return $status
}

# Breaks copies of k8s/ in ways a reviewer could miss and checks that each one fails.
self_test() {
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/k8s-validate-selftest.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    local failures=0
    expect_failure() { # expect_failure DESCRIPTION SED-SCRIPT FILE
        rm -rf "$scratch/k8s" && cp -r "$K8S_DIR" "$scratch/k8s"
        sed -i "$2" "$scratch/k8s/$3"
        if cmp -s "$K8S_DIR/$3" "$scratch/k8s/$3"; then
            echo "self-test: the edit for '$1' changed nothing"; failures=$((failures + 1)); return
        fi
        if K8S_DIR="$scratch/k8s" validate > "$scratch/out" 2>&1; then
            echo "self-test: NOT caught: $1"; failures=$((failures + 1))
        else
            echo "self-test: caught: $1"; grep -E '^\s+(ERROR|WARN)|FAIL' "$scratch/out" | head -3 | sed 's/^/    /'
        fi
    }
    expect_failure "unknown field in a pod spec" \
        's/^      terminationGracePeriodSeconds: 30$/&\n      terminationGraceSeconds: 30/' base/worker.yaml
    expect_failure "string where an integer belongs" \
        's/^  revisionHistoryLimit: 5$/  revisionHistoryLimit: "five"/' base/worker.yaml
    expect_failure "apiVersion with no schema" \
        '0,/^apiVersion: apps\/v1$/s//apiVersion: apps\/v2/' base/redis.yaml
    expect_failure "misspelt field in a generated function manifest" \
        's/^            httpGet:$/            httpGit:/' base/functions/get-thread.yaml
    expect_failure "ScaledObject aimed at a missing Deployment" \
        's/^    name: worker$/    name: workers/' overlays/keda/worker-scaledobject.yaml
    expect_failure "JSON patch on a path that does not exist" \
        's#/spec/template/spec/initContainers/0/resources#/spec/template/spec/sidecars/0/resources#' overlays/local/kustomization.yaml

    # The fallback renderer must agree with real kustomize wherever one is available.
    local real
    real=$(KUSTOMIZE_RENDERER='' renderer)
    if [[ "$real" == subset ]]; then
        echo "self-test: no real kustomize here; subset renderer not cross-checked"
    else
        for overlay in "$K8S_DIR"/overlays/*/; do
            render "$real" "$overlay" > "$scratch/real.yaml"
            render subset "$overlay" > "$scratch/subset.yaml"
            if "$VENV/bin/python" scripts/k8s_manifests.py same "$scratch/real.yaml" "$scratch/subset.yaml"; then
                echo "self-test: subset renderer matches $real for $(basename "$overlay")"
            else
                echo "self-test: subset renderer differs from $real for $(basename "$overlay")"; failures=$((failures + 1))
            fi
        done
    fi
    return $((failures > 0))
}

install_tools
validate
if [[ "${1:-}" == --self-test ]]; then
    self_test
    echo "self-test: passed"
fi
