#!/usr/bin/env python3
"""Checks on a rendered overlay that schema validation cannot make (for scripts/k8s-validate.sh).

  k8s_check.py RENDERED OUT   check the objects of RENDERED (the output of `kubectl kustomize`),
                              then write each object that kubernetes-validate has a schema for
                              to OUT/, one file per object. Exit 1 when a check fails.

Custom resources (KEDA, Gateway API, Prometheus Operator) have no schema in kubernetes-validate:
here each gets its required fields, the fields it may have (so a misspelt key fails), and its
references to objects of the same render. Rules across objects:
  - a Deployment that an HPA or ScaledObject scales sets no `replicas`, and has one scaler only;
  - a NetworkPolicy's selectors select pods of this render, and its named ports exist on them;
  - every container image has a tag that is not `latest` (or a digest);
  - ThreadWeave pods (label threadweave.io/redis-client) read secrets from mounted files:
    no secretKeyRef and no secret-looking literal in their environment, and the Redis password
    file mounted where REDIS_PASSWORD_FILE says.
Needs PyYAML.
"""
import re
import sys
from pathlib import Path

import yaml

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
REDIS_CLIENT_LABEL = "threadweave.io/redis-client"
SECRET_LOOKING = re.compile(r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)$")


class Render:
    def __init__(self, objects):
        self.objects = objects
        self.problems = []

    def of_kind(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def named(self, kind, name):
        return next((o for o in self.of_kind(kind) if o["metadata"].get("name") == name), None)

    def fail(self, obj, problem):
        self.problems.append(f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}: {problem}")

    def pod_templates(self):
        """(workload, pod template) for every workload of the render."""
        for obj in self.objects:
            if obj.get("kind") not in WORKLOAD_KINDS:
                continue
            spec = obj.get("spec", {})
            if obj["kind"] == "CronJob":
                spec = spec.get("jobTemplate", {}).get("spec", {})
            yield obj, spec.get("template", {})


def selects(selector, labels):
    """Kubernetes label-selector semantics; an empty selector selects everything."""
    labels = labels or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if not {"In": present and labels[key] in values, "NotIn": not present or labels[key] not in values,
                "Exists": present, "DoesNotExist": not present}.get(operator, False):
            return False
    return True


def containers(template):
    spec = template.get("spec", {})
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def port_names(template):
    return {port.get("name") for c in containers(template) for port in c.get("ports") or [] if port.get("name")}


def check_fields(render, obj, mapping, where, required, allowed):
    """`mapping` has every key of `required` and no key outside `required | allowed`."""
    if not isinstance(mapping, dict):
        render.fail(obj, f"{where} must be a mapping")
        return False
    for key in sorted(set(required) - set(mapping)):
        render.fail(obj, f"{where}.{key} is required")
    for key in sorted(set(mapping) - set(required) - set(allowed)):
        render.fail(obj, f"{where}.{key} is not a field of {obj['kind']}")
    return True


# Custom resources: the fields this repository uses or could reasonably use, and their references.

def check_scaled_object(render, obj):
    spec = obj.get("spec", {})
    check_fields(render, obj, spec, "spec", {"scaleTargetRef", "triggers"},
                 {"minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod", "idleReplicaCount",
                  "initialCooldownPeriod", "advanced", "fallback"})
    target = spec.get("scaleTargetRef", {})
    if target.get("kind", "Deployment") != "Deployment" or not render.named("Deployment", target.get("name")):
        render.fail(obj, f"scaleTargetRef names no Deployment of this render ({target.get('name')!r})")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
        render.fail(obj, "needs integers 0 ≤ minReplicaCount ≤ maxReplicaCount")
    required_metadata = {
        "redis-streams": {"stream", "consumerGroup"},
        "prometheus": {"serverAddress", "query", "threshold"},
    }
    for number, trigger in enumerate(spec.get("triggers") or []):
        where = f"spec.triggers[{number}]"
        check_fields(render, obj, trigger, where, {"type", "metadata"}, {"authenticationRef", "name", "metricType"})
        metadata = trigger.get("metadata") or {}
        for key, value in metadata.items():
            if not isinstance(value, str):
                render.fail(obj, f"{where}.metadata.{key} must be a string (KEDA reads every value as one)")
        for key in sorted(required_metadata.get(trigger.get("type"), set()) - set(metadata)):
            render.fail(obj, f"{where}.metadata.{key} is required for a {trigger.get('type')} trigger")
        if trigger.get("type") == "redis-streams" and not {"address", "addressFromEnv", "host"} & set(metadata):
            render.fail(obj, f"{where}: a redis-streams trigger needs address, addressFromEnv or host")
        reference = (trigger.get("authenticationRef") or {}).get("name")
        if reference and not render.named("TriggerAuthentication", reference):
            render.fail(obj, f"{where}.authenticationRef names no TriggerAuthentication of this render ({reference!r})")
    if not spec.get("triggers"):
        render.fail(obj, "has no triggers")


def check_trigger_authentication(render, obj):
    spec = obj.get("spec", {})
    check_fields(render, obj, spec, "spec", set(), {"secretTargetRef", "env", "podIdentity", "hashiCorpVault"})
    for number, reference in enumerate(spec.get("secretTargetRef") or []):
        check_fields(render, obj, reference, f"spec.secretTargetRef[{number}]", {"parameter", "name", "key"}, set())


def check_http_route(render, obj):
    spec = obj.get("spec", {})
    check_fields(render, obj, spec, "spec", {"parentRefs", "rules"}, {"hostnames"})
    for number, parent in enumerate(spec.get("parentRefs") or []):
        where = f"spec.parentRefs[{number}]"
        check_fields(render, obj, parent, where, {"name"}, {"namespace", "sectionName", "port", "group", "kind"})
        # A Gateway in another namespace is the cluster's; one in ours must be part of this render.
        if "namespace" not in parent and not render.named("Gateway", parent.get("name")):
            render.fail(obj, f"{where} names no Gateway of this render ({parent.get('name')!r}) and no namespace")
    if not spec.get("parentRefs"):
        render.fail(obj, "has no parentRefs: it would attach to no Gateway")
    for number, rule in enumerate(spec.get("rules") or []):
        where = f"spec.rules[{number}]"
        check_fields(render, obj, rule, where, {"matches", "backendRefs"}, {"filters", "timeouts", "name"})
        for index, match in enumerate(rule.get("matches") or []):
            check_fields(render, obj, match, f"{where}.matches[{index}]", {"path"}, {"method", "headers", "queryParams"})
            path = match.get("path") or {}
            check_fields(render, obj, path, f"{where}.matches[{index}].path", {"type", "value"}, set())
            if path.get("type") not in ("Exact", "PathPrefix", "RegularExpression"):
                render.fail(obj, f"{where}.matches[{index}].path.type {path.get('type')!r} is not a path match type")
            if path.get("type") == "RegularExpression":
                try:
                    re.compile(path.get("value", ""))
                except re.error as error:
                    render.fail(obj, f"{where}.matches[{index}].path.value is no regular expression: {error}")
            elif not str(path.get("value", "")).startswith("/"):
                render.fail(obj, f"{where}.matches[{index}].path.value must start with /")
            if match.get("method") not in (None, "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"):
                render.fail(obj, f"{where}.matches[{index}].method {match.get('method')!r} is not an HTTP method")
        for name, duration in (rule.get("timeouts") or {}).items():
            if name not in ("request", "backendRequest") or not re.fullmatch(r"([0-9]{1,5}(h|m|s|ms)){1,4}", str(duration)):
                render.fail(obj, f"{where}.timeouts.{name}: {duration!r} is not a Gateway API duration")
        for index, backend in enumerate(rule.get("backendRefs") or []):
            check_fields(render, obj, backend, f"{where}.backendRefs[{index}]", {"name", "port"}, {"weight", "kind", "group", "namespace"})
            service = render.named("Service", backend.get("name"))
            if not service:
                render.fail(obj, f"{where}.backendRefs[{index}] names no Service of this render ({backend.get('name')!r})")
            elif backend.get("port") not in [p.get("port") for p in service["spec"].get("ports", [])]:
                render.fail(obj, f"{where}.backendRefs[{index}]: Service {backend.get('name')} has no port {backend.get('port')}")
        if not rule.get("backendRefs"):
            render.fail(obj, f"{where} has no backendRefs")


def check_gateway(render, obj):
    spec = obj.get("spec", {})
    check_fields(render, obj, spec, "spec", {"gatewayClassName", "listeners"}, {"addresses", "infrastructure"})
    for number, listener in enumerate(spec.get("listeners") or []):
        check_fields(render, obj, listener, f"spec.listeners[{number}]", {"name", "protocol", "port"},
                     {"hostname", "tls", "allowedRoutes"})


def check_monitor(render, obj, targets, endpoints_key):
    """ServiceMonitor (targets: Services) or PodMonitor (targets: pod templates)."""
    spec = obj.get("spec", {})
    check_fields(render, obj, spec, "spec", {"selector", endpoints_key},
                 {"namespaceSelector", "jobLabel", "podTargetLabels", "targetLabels", "sampleLimit"})
    selected = [ports for labels, ports in targets if selects(spec.get("selector") or {}, labels)]
    if not selected:
        render.fail(obj, "selector selects nothing in this render")
    for number, endpoint in enumerate(spec.get(endpoints_key) or []):
        check_fields(render, obj, endpoint, f"spec.{endpoints_key}[{number}]", {"port"},
                     {"path", "interval", "scrapeTimeout", "scheme", "relabelings", "metricRelabelings", "honorLabels"})
        if selected and not any(endpoint.get("port") in ports for ports in selected):
            render.fail(obj, f"spec.{endpoints_key}[{number}].port {endpoint.get('port')!r} is no port of what it selects")


def check_service_monitor(render, obj):
    services = [(s["metadata"].get("labels"), {p.get("name") for p in s["spec"].get("ports", [])}) for s in render.of_kind("Service")]
    check_monitor(render, obj, services, "endpoints")


def check_pod_monitor(render, obj):
    pods = [(template.get("metadata", {}).get("labels"), port_names(template)) for _, template in render.pod_templates()]
    check_monitor(render, obj, pods, "podMetricsEndpoints")


SCHEMALESS = {
    ("keda.sh/v1alpha1", "ScaledObject"): check_scaled_object,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): check_trigger_authentication,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): check_http_route,
    ("gateway.networking.k8s.io/v1", "Gateway"): check_gateway,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): check_service_monitor,
    ("monitoring.coreos.com/v1", "PodMonitor"): check_pod_monitor,
}


# Rules across objects.

def check_scaled_deployments(render):
    scalers = {}
    for hpa in render.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"].get("scaleTargetRef", {})
        if target.get("kind") == "Deployment":
            scalers.setdefault(target.get("name"), []).append(f"HorizontalPodAutoscaler/{hpa['metadata']['name']}")
    for scaled in render.of_kind("ScaledObject"):
        target = scaled.get("spec", {}).get("scaleTargetRef", {})
        if target.get("kind", "Deployment") == "Deployment":
            scalers.setdefault(target.get("name"), []).append(f"ScaledObject/{scaled['metadata']['name']}")
    for name, owners in sorted(scalers.items()):
        deployment = render.named("Deployment", name)
        if deployment is None:
            render.problems.append(f"{', '.join(owners)}: scales Deployment {name!r}, which this render lacks")
            continue
        if "replicas" in deployment["spec"]:
            render.fail(deployment, f"sets replicas although {', '.join(owners)} owns its count "
                                    "(every apply would reset it)")
        if len(owners) > 1:
            render.fail(deployment, f"has {len(owners)} autoscalers, which fight: {', '.join(owners)}")


def check_network_policies(render):
    templates = [template for _, template in render.pod_templates()]
    for policy in render.of_kind("NetworkPolicy"):
        spec = policy.get("spec", {})
        selector = spec.get("podSelector") or {}
        targets = [t for t in templates if selects(selector, t.get("metadata", {}).get("labels"))]
        if selector and not targets:
            render.fail(policy, "podSelector selects no pod of this render")
        for number, rule in enumerate(spec.get("ingress") or []):
            for peer in rule.get("from") or []:
                if "podSelector" in peer and "namespaceSelector" not in peer and "ipBlock" not in peer:
                    if not any(selects(peer["podSelector"], t.get("metadata", {}).get("labels")) for t in templates):
                        render.fail(policy, f"ingress[{number}].from podSelector selects no pod of this render")
            for port in rule.get("ports") or []:
                named = port.get("port")
                if isinstance(named, str) and targets and not any(named in port_names(t) for t in targets):
                    render.fail(policy, f"ingress[{number}] port {named!r} is named by no pod it selects")


def check_images(render):
    for workload, template in render.pod_templates():
        for container in containers(template):
            image = container.get("image", "")
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if "@sha256:" not in image and tag in ("", "latest"):
                render.fail(workload, f"container {container.get('name')} runs {image!r}: pin a release tag or digest")


def check_secrets_as_files(render):
    for workload, template in render.pod_templates():
        if template.get("metadata", {}).get("labels", {}).get(REDIS_CLIENT_LABEL) != "true":
            continue
        volumes = {v.get("name"): v for v in template.get("spec", {}).get("volumes") or []}
        for container in containers(template):
            env = {e.get("name"): e for e in container.get("env") or []}
            for name, entry in env.items():
                if "secretKeyRef" in (entry.get("valueFrom") or {}):
                    render.fail(workload, f"{container.get('name')}: {name} takes a Secret into the environment; mount it as a file")
                if SECRET_LOOKING.search(name or "") and "value" in entry:
                    render.fail(workload, f"{container.get('name')}: {name} is a secret written into the manifest")
            password_file = (env.get("REDIS_PASSWORD_FILE") or {}).get("value")
            if not password_file:
                render.fail(workload, f"{container.get('name')}: no REDIS_PASSWORD_FILE")
                continue
            mounted = [m for m in container.get("volumeMounts") or []
                       if password_file.startswith(m.get("mountPath", "").rstrip("/") + "/")]
            secret = next((volumes.get(m.get("name"), {}).get("secret") for m in mounted), None)
            if not secret or not secret.get("secretName", "").startswith("threadweave-redis"):
                render.fail(workload, f"{container.get('name')}: REDIS_PASSWORD_FILE {password_file} is on no threadweave-redis Secret volume")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rendered, out_dir = Path(argv[0]), Path(argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    render = Render([doc for doc in yaml.safe_load_all(rendered.read_text()) if doc is not None])
    for obj in render.objects:
        kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
        check = SCHEMALESS.get((obj.get("apiVersion"), kind))
        if check:
            before = len(render.problems)
            check(render, obj)
            verdict = "failed" if len(render.problems) > before else "passed"
            print(f"SKIPPED-SCHEMA {obj['apiVersion']} {kind}/{name} (no schema in kubernetes-validate; structural check {verdict})")
        else:
            (out_dir / f"{kind.lower()}-{name}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    for rule in (check_scaled_deployments, check_network_policies, check_images, check_secrets_as_files):
        rule(render)
    for problem in render.problems:
        print(f"FAIL {problem}")
    return 1 if render.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
