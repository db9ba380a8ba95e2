"""The fleet as Kubernetes API objects, the way ``kubectl get ... -o json`` returns them.

Each service gets a Service and a workload (a StatefulSet for data stores, else a Deployment)
with a ReplicaSet and pods carrying owner references. A workload names the services it calls
in its env vars, by URL (``http://pricing:8080``), by cluster DNS name
(``postgres-orders.prod.svc.cluster.local``) or through a ConfigMap it reads with ``envFrom``,
as real manifests do. The edge tier gets an Ingress routing paths to the APIs it calls.

>>> from simulator.fleet import build_fleet
>>> doc = k8s_objects(build_fleet(12, seed=1))
>>> doc["kind"], sorted({i["kind"] for i in doc["items"]})[:3]
('List', ['ConfigMap', 'Deployment', 'Ingress'])
"""

from __future__ import annotations

import hashlib
import random
from typing import List

from simulator.fleet import Fleet

_STATEFUL = ("db", "cache", "queue")


def _uid(*parts: str) -> str:
    h = hashlib.sha1("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def k8s_objects(fleet: Fleet, namespace: str = "prod", seed: int = 0, replicas: int = 3) -> dict:
    rng = random.Random(seed)
    items: List[dict] = []

    def meta(name: str, kind: str, labels: dict, owner: tuple = None) -> dict:
        m = {"name": name, "namespace": namespace, "uid": _uid(namespace, kind, name), "labels": labels}
        if owner:
            m["ownerReferences"] = [{"apiVersion": owner[0], "kind": owner[1], "name": owner[2],
                                     "uid": _uid(namespace, owner[1], owner[2]), "controller": True}]
        return m

    for s in fleet.services:
        labels = {"app.kubernetes.io/name": s.name, "app.kubernetes.io/part-of": "shop", "tier": s.tier}
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": meta(s.name, "Service", labels),
                      "spec": {"selector": {"app.kubernetes.io/name": s.name},
                               "ports": [{"port": 8080, "targetPort": 8080, "protocol": "TCP"}]}})
        env, env_from = [], []
        callees = [c for c, _ in fleet.calls.get(s.name, [])]
        cm_data = {}
        for c in callees:
            var = c.upper().replace("-", "_")
            style = rng.random()
            if style < 0.4:
                env.append({"name": f"{var}_URL", "value": f"http://{c}:8080"})
            elif style < 0.7:
                env.append({"name": f"{var}_ADDR", "value": f"{c}.{namespace}.svc.cluster.local:8080"})
            else:
                cm_data[f"{var}_ENDPOINT"] = f"http://{c}.{namespace}:8080/v1"
        env.append({"name": "LOG_LEVEL", "value": "info"})
        if cm_data:
            cm = f"{s.name}-config"
            items.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(cm, "ConfigMap", labels),
                          "data": cm_data})
            env_from.append({"configMapRef": {"name": cm}})
        kind = "StatefulSet" if s.tier in _STATEFUL else "Deployment"
        container = {"name": s.name, "image": f"registry.example.com/shop/{s.name}:1.0.0",
                     "ports": [{"containerPort": 8080}], "env": env}
        if env_from:
            container["envFrom"] = env_from
        items.append({"apiVersion": "apps/v1", "kind": kind, "metadata": meta(s.name, kind, labels),
                      "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": s.name}},
                               "template": {"metadata": {"labels": labels},
                                            "spec": {"containers": [container]}}}})
        if kind == "Deployment":
            rs = f"{s.name}-{_uid(s.name)[:10].replace('-', '')}"
            items.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                          "metadata": meta(rs, "ReplicaSet", labels, ("apps/v1", "Deployment", s.name)),
                          "spec": {"replicas": replicas}})
            owner, prefix = ("apps/v1", "ReplicaSet", rs), rs
        else:
            owner, prefix = ("apps/v1", "StatefulSet", s.name), s.name
        for k in range(replicas):
            pod = f"{prefix}-{k}" if kind == "StatefulSet" else f"{prefix}-{_uid(s.name, str(k))[:5]}"
            items.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta(pod, "Pod", labels, owner),
                          "spec": {"containers": [{"name": s.name}]}, "status": {"phase": "Running"}})
    for e in (s for s in fleet.services if s.tier == "edge"):
        paths = [{"path": f"/{c}", "pathType": "Prefix",
                  "backend": {"service": {"name": c, "port": {"number": 8080}}}}
                 for c, _ in fleet.calls.get(e.name, [])]
        items.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                      "metadata": meta(e.name, "Ingress", {"app.kubernetes.io/name": e.name}),
                      "spec": {"ingressClassName": "nginx",
                               "rules": [{"host": f"{e.name}.example.com", "http": {"paths": paths}}]}})
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
