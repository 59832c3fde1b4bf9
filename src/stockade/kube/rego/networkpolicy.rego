package k8sstockadenetworkpolicy

import rego.v1

spec := object.get(input.review.object, "spec", {})

proxy_labels := __PROXY_LABELS__

violation contains {"msg": "networkpolicy: ingress rules are not allowed in a stockade namespace"} if {
    count(object.get(spec, "ingress", [])) > 0
}

violation contains {"msg": "networkpolicy: policyTypes must list Ingress and Egress"} if {
    types := {t | some t in object.get(spec, "policyTypes", [])}
    types != {"Ingress", "Egress"}
}

violation contains {"msg": sprintf("networkpolicy: egress[%v] must name peers", [i])} if {
    some i, rule in object.get(spec, "egress", [])
    count(object.get(rule, "to", [])) == 0
}

violation contains {"msg": sprintf("networkpolicy: egress[%v] reaches more than the egress proxy", [i])} if {
    some i, rule in object.get(spec, "egress", [])
    some peer in object.get(rule, "to", [])
    not proxy_peer(peer)
}

violation contains {"msg": sprintf("networkpolicy: egress[%v] must name the proxy port only", [i])} if {
    some i, rule in object.get(spec, "egress", [])
    count(object.get(rule, "ports", [])) == 0
}

violation contains {"msg": sprintf("networkpolicy: egress[%v] opens a port range or DNS", [i])} if {
    some i, rule in object.get(spec, "egress", [])
    some p in object.get(rule, "ports", [])
    bad_port(p)
}

bad_port(p) if p.endPort

bad_port(p) if p.port == 53

bad_port(p) if p.port == "dns"

bad_port(p) if not p.port

proxy_peer(peer) if {
    object.keys(peer) == {"namespaceSelector", "podSelector"}
    peer.podSelector == {"matchLabels": proxy_labels}
    object.keys(peer.namespaceSelector) == {"matchLabels"}
    some ns in input.parameters.proxyNamespaces
    peer.namespaceSelector.matchLabels == {"kubernetes.io/metadata.name": ns}
}
