package k8sstockadenamespace

import rego.v1

labels := object.get(input.review.object, ["metadata", "labels"], {})

violation contains {"msg": sprintf("namespace: label pod-security.kubernetes.io/%v must be restricted", [mode])} if {
    some mode in ["enforce", "audit", "warn"]
    object.get(labels, concat("", ["pod-security.kubernetes.io/", mode]), "") != "restricted"
}

violation contains {"msg": sprintf("namespace: label pod-security.kubernetes.io/%v-version must be latest", [mode])} if {
    some mode in ["enforce", "audit", "warn"]
    object.get(labels, concat("", ["pod-security.kubernetes.io/", mode, "-version"]), "latest") != "latest"
}
