# stockade's Pod rules (Gatekeeper template K8sStockadePod); each message starts with the id of
# the stockade admission check it mirrors. The lists are the admission validator's own.
package __PACKAGE__

import rego.v1

# -- the object and its containers ---------------------------------------------------------------

pod := input.review.object

spec := object.get(pod, "spec", {})

params := object.get(input, "parameters", {})

init_and_app := array.concat(object.get(spec, "initContainers", []), object.get(spec, "containers", []))

all_containers := array.concat(init_and_app, object.get(spec, "ephemeralContainers", []))

psc := object.get(spec, "securityContext", {})

csc(c) := object.get(c, "securityContext", {})

is_windows if spec.os.name == "windows"

# -- baseline ------------------------------------------------------------------------------------

violation contains {"msg": sprintf("privileged: container %v is privileged", [c.name])} if {
    some c in all_containers
    csc(c).privileged == true
}

violation contains {"msg": sprintf("hostNamespaces: %v is true", [f])} if {
    some f in ["hostNetwork", "hostPID", "hostIPC"]
    spec[f] == true
}

violation contains {"msg": sprintf("hostPorts: container %v uses hostPort %v", [c.name, p.hostPort])} if {
    some c in all_containers
    some p in object.get(c, "ports", [])
    object.get(p, "hostPort", 0) != 0
}

violation contains {"msg": sprintf("capabilities_restricted: container %v adds %v", [c.name, cap])} if {
    some c in all_containers
    some cap in object.get(csc(c), ["capabilities", "add"], [])
    cap != "NET_BIND_SERVICE"
}

violation contains {"msg": sprintf("capabilities_restricted: container %v does not drop ALL", [c.name])} if {
    some c in all_containers
    not "ALL" in object.get(csc(c), ["capabilities", "drop"], [])
}

selinux_types := __SELINUX_TYPES__

selinux_contexts contains psc if true

selinux_contexts contains csc(c) if some c in all_containers

violation contains {"msg": sprintf("seLinuxOptions: type %v is not allowed", [t])} if {
    some sc in selinux_contexts
    t := object.get(sc, ["seLinuxOptions", "type"], "")
    t != ""
    not t in selinux_types
}

violation contains {"msg": sprintf("seLinuxOptions: %v must be unset", [f])} if {
    some sc in selinux_contexts
    some f in ["user", "role"]
    object.get(sc, ["seLinuxOptions", f], "") != ""
}

violation contains {"msg": sprintf("procMount_restricted: container %v sets procMount %v", [c.name, m])} if {
    some c in all_containers
    m := object.get(csc(c), "procMount", "Default")
    m != "Default"
}

safe_sysctls := __SAFE_SYSCTLS__

violation contains {"msg": sprintf("sysctls: %v is not a safe sysctl", [s.name])} if {
    some s in object.get(psc, "sysctls", [])
    not s.name in safe_sysctls
}

violation contains {"msg": "windowsHostProcess: hostProcess is true"} if {
    some sc in selinux_contexts
    object.get(sc, ["windowsOptions", "hostProcess"], false) == true
}

probe_handlers contains h if {
    some c in all_containers
    some p in ["livenessProbe", "readinessProbe", "startupProbe"]
    some k in ["httpGet", "tcpSocket"]
    h := c[p][k]
}

probe_handlers contains h if {
    some c in all_containers
    some p in ["postStart", "preStop"]
    some k in ["httpGet", "tcpSocket"]
    h := c.lifecycle[p][k]
}

violation contains {"msg": sprintf("hostProbesAndHostLifecycle: host %v is set", [h.host])} if {
    some h in probe_handlers
    object.get(h, "host", "") != ""
}

# -- restricted ----------------------------------------------------------------------------------

violation contains {"msg": sprintf("allowPrivilegeEscalation: container %v must set it to false", [c.name])} if {
    some c in all_containers
    not csc(c).allowPrivilegeEscalation == false
}

violation contains {"msg": sprintf("runAsNonRoot: container %v may run as root", [c.name])} if {
    some c in all_containers
    not csc(c).runAsNonRoot == true
    not psc.runAsNonRoot == true
}

violation contains {"msg": sprintf("runAsNonRoot: container %v sets runAsNonRoot false", [c.name])} if {
    some c in all_containers
    csc(c).runAsNonRoot == false
}

violation contains {"msg": "runAsUser: the pod runs as uid 0"} if psc.runAsUser == 0

violation contains {"msg": sprintf("runAsUser: container %v runs as uid 0", [c.name])} if {
    some c in all_containers
    csc(c).runAsUser == 0
}

confined := {"RuntimeDefault", "Localhost"}

violation contains {"msg": sprintf("seccompProfile_restricted: container %v has no RuntimeDefault or Localhost profile", [c.name])} if {
    some c in all_containers
    not object.get(csc(c), ["seccompProfile", "type"], object.get(psc, ["seccompProfile", "type"], "")) in confined
}

allowed_volume_keys := __VOLUME_KEYS__

violation contains {"msg": sprintf("restrictedVolumes: volume %v uses %v", [v.name, k])} if {
    some v in object.get(spec, "volumes", [])
    some k, _ in v
    not k in allowed_volume_keys
}

# -- stockade ------------------------------------------------------------------------------------

violation contains {"msg": "stockade_runtimeClass: runtimeClassName must be gvisor"} if {
    object.get(spec, "runtimeClassName", "") != "gvisor"
}

violation contains {"msg": "stockade_linuxOnly: os.name must be linux"} if {
    object.get(spec, ["os", "name"], "linux") != "linux"
}

violation contains {"msg": sprintf("stockade_appArmorRequired: container %v has no RuntimeDefault or Localhost AppArmor profile", [c.name])} if {
    some c in all_containers
    not object.get(csc(c), ["appArmorProfile", "type"], object.get(psc, ["appArmorProfile", "type"], "")) in confined
}

violation contains {"msg": sprintf("stockade_imageDigest: image %v is not pinned by sha256 digest", [c.image])} if {
    some c in all_containers
    not regex.match(`@sha256:[0-9a-f]{64}$`, object.get(c, "image", ""))
}

is_host(h) if contains(h, ".")

is_host(h) if contains(h, ":")

is_host("localhost")

# Docker's defaults: no registry host means docker.io; one component means library/.
full_name(img) := img if {
    parts := split(img, "/")
    count(parts) > 1
    is_host(parts[0])
}

full_name(img) := concat("/", ["docker.io", img]) if {
    parts := split(img, "/")
    count(parts) > 1
    not is_host(parts[0])
}

full_name(img) := concat("/", ["docker.io/library", img]) if not contains(img, "/")

registry_ok(img, pattern) if {
    endswith(pattern, "/*")
    startswith(full_name(img), trim_suffix(pattern, "*"))
}

registry_ok(img, pattern) if {
    not endswith(pattern, "/*")
    name := full_name(img)
    some sep in [":", "@"]
    startswith(name, concat("", [pattern, sep]))
    not contains(trim_prefix(name, pattern), "/")
}

violation contains {"msg": sprintf("stockade_registryAllowlist: image %v is not from an allowed registry", [c.image])} if {
    some c in all_containers
    not any_registry_ok(object.get(c, "image", ""))
}

# A reference the registry allowlist can judge at all: [host[:port]/]path[:tag][@sha256:hex].
well_formed(img) if regex.match(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`, img)

any_registry_ok(img) if {
    well_formed(img)
    some p in object.get(params, "registries", [])
    registry_ok(img, p)
}

violation contains {"msg": sprintf("stockade_resources: container %v lacks %v.%v", [c.name, kind, res])} if {
    some c in init_and_app
    some kind in ["limits", "requests"]
    some res in ["cpu", "memory"]
    not positive(object.get(c, ["resources", kind, res], "0"))
}

violation contains {"msg": sprintf("stockade_ephemeralStorage: container %v lacks limits.ephemeral-storage", [c.name])} if {
    some c in init_and_app
    not positive(object.get(c, ["resources", "limits", "ephemeral-storage"], "0"))
}

violation contains {"msg": sprintf("stockade_resources: ephemeral container %v cannot declare resources", [c.name])} if {
    some c in object.get(spec, "ephemeralContainers", [])
}

violation contains {"msg": sprintf("stockade_ephemeralStorage: ephemeral container %v cannot declare an ephemeral-storage limit", [c.name])} if {
    some c in object.get(spec, "ephemeralContainers", [])
}

positive(q) if {
    is_string(q)
    regex.match(`^\+?(0*[1-9][0-9]*(\.[0-9]*)?|0*\.[0-9]*[1-9][0-9]*)([eE][+-]?[0-9]+|[munkMGTPE]|[KMGTPE]i)?$`, q)
}

positive(q) if {
    is_number(q)
    q > 0
}

violation contains {"msg": sprintf("stockade_readOnlyRootFilesystem: container %v has a writable root", [c.name])} if {
    some c in all_containers
    not csc(c).readOnlyRootFilesystem == true
}

violation contains {"msg": "stockade_serviceAccountToken: automountServiceAccountToken must be false"} if {
    not spec.automountServiceAccountToken == false
}

violation contains {"msg": sprintf("stockade_serviceAccountToken: volume %v projects a credential", [v.name])} if {
    some v in object.get(spec, "volumes", [])
    some s in object.get(v, ["projected", "sources"], [])
    some k in ["serviceAccountToken", "podCertificate", "clusterTrustBundle"]
    s[k]
}

secret_refs contains n if {
    some v in object.get(spec, "volumes", [])
    n := object.get(v, ["secret", "secretName"], null)
    v.secret
}

secret_refs contains n if {
    some v in object.get(spec, "volumes", [])
    some s in object.get(v, ["projected", "sources"], [])
    s.secret
    n := object.get(s.secret, "name", null)
}

secret_refs contains n if {
    some v in object.get(spec, "volumes", [])
    v.csi.nodePublishSecretRef
    n := object.get(v.csi.nodePublishSecretRef, "name", null)
}

secret_refs contains n if {
    some c in all_containers
    some e in object.get(c, "env", [])
    e.valueFrom.secretKeyRef
    n := object.get(e.valueFrom.secretKeyRef, "name", null)
}

secret_refs contains n if {
    some c in all_containers
    some e in object.get(c, "envFrom", [])
    e.secretRef
    n := object.get(e.secretRef, "name", null)
}

secret_granted(n) if {
    is_string(n)
    some p in object.get(params, "secretPatterns", [])
    glob.match(p, [], n)
}

violation contains {"msg": sprintf("stockade_secrets: secret %v is not granted", [n])} if {
    some n in secret_refs
    not secret_granted(n)
}

violation contains {"msg": sprintf("stockade_secrets: volume %v reads an external secret store", [v.name])} if {
    some v in object.get(spec, "volumes", [])
    v.csi.driver == "secrets-store.csi.k8s.io"
}

violation contains {"msg": "stockade_activeDeadline: activeDeadlineSeconds must be a positive integer"} if {
    not positive_int(object.get(spec, "activeDeadlineSeconds", 0))
}

positive_int(n) if {
    is_number(n)
    n > 0
    n == round(n)
}

# The deprecated AppArmor annotations are still read by kubelets: judge them as admission does.
violation contains {"msg": sprintf("appArmorProfile: annotation %v is %v", [k, v])} if {
    some k, v in object.get(pod, ["metadata", "annotations"], {})
    startswith(k, "container.apparmor.security.beta.kubernetes.io/")
    not apparmor_annotation_ok(v)
}

apparmor_annotation_ok("")

apparmor_annotation_ok("runtime/default")

apparmor_annotation_ok(v) if startswith(v, "localhost/")
