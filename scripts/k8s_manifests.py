#!/usr/bin/env python3
"""Helpers for scripts/k8s-validate.sh (needs PyYAML).

  build DIR            Render a kustomization with the *subset* of kustomize that k8s/ uses.
  split RENDERED OUT   Write each document of a rendered stream to OUT/, one file per object;
                       custom resources that kubernetes-validate has no schema for are checked
                       structurally here instead and listed as skipped.
  same A B             Exit 0 when two rendered streams hold the same objects (order aside).

The subset renderer exists because no kustomize binary installs from Debian's or PyPI's
packages here (Debian's kubectl 1.20 embeds kustomize 2.0, which predates `patches`). It
supports exactly: `resources` (files and directories), `namespace`, `configMapGenerator`
entries made of `files` with `options.disableNameSuffixHash` (and optional `options.labels`),
and `patches` whose `target` selects by kind/name/group/version and whose patch is a JSON
6902 list of add/replace/remove operations. Anything else is refused by name rather than rendered
differently from kustomize; `k8s-validate.sh --self-test` compares its output with real
kustomize whenever one is available.
"""
import sys
from pathlib import Path

import yaml

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "patches", "namespace", "configMapGenerator"}
SUPPORTED_TARGET_FIELDS = {"kind", "name", "group", "version"}
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                        "PersistentVolume", "StorageClass", "PriorityClass"}


class RenderError(Exception):
    pass


def build(directory):
    directory = Path(directory)
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    kustomization = yaml.safe_load(path.read_text()) or {}
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise RenderError(f"{path}: fields not supported by the subset renderer: {sorted(unsupported)}")

    objects = []
    for entry in kustomization.get("resources", []):
        resource = directory / entry
        if resource.is_dir():
            objects += build(resource)
        elif resource.is_file():
            objects += [doc for doc in yaml.safe_load_all(resource.read_text()) if doc is not None]
        else:
            raise RenderError(f"{path}: resource {entry} does not exist")
    objects += [generated_config_map(entry, path, directory) for entry in kustomization.get("configMapGenerator", [])]
    check_unique(objects, path)

    for number, patch in enumerate(kustomization.get("patches", [])):
        apply_patch(objects, patch, f"{path} patch #{number}", directory)

    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] in CLUSTER_SCOPED_KINDS:
                raise RenderError(f"{path}: namespace on cluster-scoped {obj['kind']} is not supported")
            obj.setdefault("metadata", {})["namespace"] = namespace
    return objects


def generated_config_map(entry, path, directory):
    """A ConfigMap whose data are files, named as given (no hash suffix to compute)."""
    options = entry.get("options", {})
    if set(entry) - {"name", "files", "options"} or set(options) - {"disableNameSuffixHash", "labels"}:
        raise RenderError(f"{path}: configMapGenerator {entry.get('name')}: only name, files and options are supported")
    if options.get("disableNameSuffixHash") is not True:
        raise RenderError(f"{path}: configMapGenerator {entry.get('name')}: needs options.disableNameSuffixHash: true")
    metadata = {"name": entry["name"]}
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    data = {}
    for file in entry.get("files", []):
        if "=" in file:
            raise RenderError(f"{path}: configMapGenerator {entry['name']}: key=file entries are not supported")
        data[Path(file).name] = (directory / file).read_text()
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def identity(obj):
    metadata = obj.get("metadata", {})
    return (obj.get("apiVersion"), obj.get("kind"), metadata.get("namespace"), metadata.get("name"))


def check_unique(objects, where):
    seen = set()
    for obj in objects:
        key = identity(obj)
        if key in seen:
            raise RenderError(f"{where}: {key} is defined twice")
        seen.add(key)


def matches(obj, target):
    group, _, version = obj["apiVersion"].rpartition("/")
    return all([
        target.get("kind") in (None, obj["kind"]),
        target.get("name") in (None, obj["metadata"]["name"]),
        target.get("group") in (None, group),
        target.get("version") in (None, version),
    ])


def apply_patch(objects, patch, where, directory):
    target = patch.get("target")
    if not target or set(target) - SUPPORTED_TARGET_FIELDS or set(patch) - {"target", "patch", "path"}:
        raise RenderError(f"{where}: only patches with a kind/name/group/version target are supported")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise RenderError(f"{where}: strategic-merge patches are not supported, only JSON 6902 lists")
    for obj in objects:
        if matches(obj, target):
            for operation in operations:
                apply_operation(obj, operation, f"{where} on {obj['kind']}/{obj['metadata']['name']}")


def apply_operation(document, operation, where):
    op, path = operation.get("op"), operation.get("path", "")
    if op not in ("add", "replace", "remove"):
        raise RenderError(f"{where}: JSON patch op {op!r} is not supported")
    tokens = [token.replace("~1", "/").replace("~0", "~") for token in path.split("/")[1:]]
    if not tokens:
        raise RenderError(f"{where}: patching the whole document is not supported")
    parent = document
    for token in tokens[:-1]:
        parent = step(parent, token, where, path)
    last = tokens[-1]
    if isinstance(parent, list):
        if op == "add" and last == "-":
            parent.append(operation["value"])
            return
        index = list_index(parent, last, where, path, allow_end=(op == "add"))
        if op == "add":
            parent.insert(index, operation["value"])
        elif op == "replace":
            parent[index] = operation["value"]
        else:
            del parent[index]
    elif isinstance(parent, dict):
        if op != "add" and last not in parent:
            raise RenderError(f"{where}: {op} {path}: no such member")
        if op == "remove":
            del parent[last]
        else:
            parent[last] = operation["value"]
    else:
        raise RenderError(f"{where}: {path} does not lead into an object or array")


def step(node, token, where, path):
    if isinstance(node, list):
        return node[list_index(node, token, where, path)]
    if isinstance(node, dict) and token in node:
        return node[token]
    raise RenderError(f"{where}: {path}: no member {token!r}")


def list_index(items, token, where, path, allow_end=False):
    if not token.isdigit() or int(token) > len(items) or (int(token) == len(items) and not allow_end):
        raise RenderError(f"{where}: {path}: index {token!r} out of range")
    return int(token)


# Custom resources kubernetes-validate cannot check, with the minimum we can check ourselves.
def check_scaled_object(obj, deployments):
    spec = obj.get("spec", {})
    problems = []
    if spec.get("scaleTargetRef", {}).get("name") not in deployments:
        problems.append("scaleTargetRef.name names no Deployment in this build")
    triggers = spec.get("triggers") or []
    if not triggers:
        problems.append("has no triggers")
    for trigger in triggers:
        metadata = trigger.get("metadata", {})
        if trigger.get("type") == "redis-streams":
            for field in ("stream", "consumerGroup", "lagCount"):
                if not isinstance(metadata.get(field), str):
                    problems.append(f"redis-streams trigger needs string metadata.{field}")
            if not ("address" in metadata or "addressFromEnv" in metadata):
                problems.append("redis-streams trigger needs address or addressFromEnv")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not 0 <= low <= high:
        problems.append("needs 0 ≤ minReplicaCount ≤ maxReplicaCount")
    return problems


SCHEMALESS_CHECKS = {("keda.sh/v1alpha1", "ScaledObject"): check_scaled_object}


def split(rendered, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    objects = [doc for doc in yaml.safe_load_all(Path(rendered).read_text()) if doc is not None]
    deployments = {o["metadata"]["name"] for o in objects if o.get("kind") == "Deployment"}
    failed = False
    for obj in objects:
        kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
        check = SCHEMALESS_CHECKS.get((obj.get("apiVersion"), kind))
        if check:
            problems = check(obj, deployments)
            for problem in problems:
                print(f"FAIL {obj['apiVersion']} {kind}/{name}: {problem}")
            failed |= bool(problems)
            print(f"SKIPPED-SCHEMA {obj['apiVersion']} {kind}/{name} (no schema in kubernetes-validate; structural check {'failed' if problems else 'passed'})")
            continue
        (out_dir / f"{kind.lower()}-{name}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    return 1 if failed else 0


def same(first, second):
    def load(path):
        return {identity(doc): doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc is not None}
    a, b = load(first), load(second)
    differing = sorted(str(key) for key in a.keys() | b.keys() if a.get(key) != b.get(key))
    for key in differing:
        print(f"differs: {key}")
    return 1 if differing else 0


def main(argv):
    try:
        if len(argv) == 2 and argv[0] == "build":
            print(yaml.safe_dump_all(build(argv[1]), sort_keys=False), end="")
            return 0
        if len(argv) == 3 and argv[0] == "split":
            return split(argv[1], argv[2])
        if len(argv) == 3 and argv[0] == "same":
            return same(argv[1], argv[2])
    except RenderError as error:
        print(f"kustomize subset: {error}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
