{{- /*
  The rules on the managed namespaces: exactly the calls the operator makes,
  each with what it is for. The end-to-end tests run the operator against an
  API server that enforces these rules (rendered from this chart), and fail
  on any request they deny: a missing rule fails a test, and a rule here that
  no test needs must say why it is kept.
*/}}
{{- define "logbook.managedRules" -}}
# ValkeyClusters: the controller's list and watch; get reads the cluster a
# ValkeyUser names (a user of no cluster says so in its status); patch
# adds and removes the finalizer and clears the switchover and failover
# request annotations once served.
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeyclusters"]
  verbs: ["get", "list", "watch", "patch"]
# The status subresource: phase, conditions, primary, journal head.
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeyclusters/status"]
  verbs: ["patch"]
# ValkeyUsers: listed for each cluster's reconcile and watched (a change
# reconciles the cluster a user names); get reads one before its finalizer
# is released; patch adds and removes that finalizer.
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeyusers"]
  verbs: ["get", "list", "watch", "patch"]
# Their status subresource: phase, nodes holding the user, the password's
# fingerprint, what is wrong.
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeyusers/status"]
  verbs: ["patch"]
# ValkeyBackups: listed for each cluster's reconcile and watched (a change
# reconciles the cluster a backup names); get reads one to publish its
# status; create makes the schedule's backups; delete is retention's.
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeybackups"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Their status subresource: phase, attempts, shards, size, location.
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeybackups/status"]
  verbs: ["patch"]
# ValkeyOperatorDefaults (a namespace's defaults and plans): listed and
# watched (a change is judged by every cluster it reaches).
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeyoperatordefaults"]
  verbs: ["list", "watch"]
# Their status subresource: valid or not, and why; the plans defined.
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeyoperatordefaults/status"]
  verbs: ["patch"]
# The one rule no test exercises: the operator never calls it, but the
# owner references it puts on its objects set blockOwnerDeletion, which
# needs update on the owner's finalizers wherever the
# OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift).
- apiGroups: ["valkey.logbook.dev"]
  resources: ["valkeyclusters/finalizers"]
  verbs: ["update"]
# Pods: watched for phase, readiness and addresses; patch moves the role
# label after a failover; delete rolls a pod onto a new revision. The one
# pod the operator makes itself is a new image's preflight
# (`<cluster>-preflight`, applied: create), read back (get) until its
# server answers, then deleted.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Objects the operator owns, server-side applied (apply authorizes as create
# when the object is new, as patch after) and watched so a change made by
# someone else is put back; deleted with the cluster before the finalizer is
# released. Secrets: get reads the password Secret a spec or a ValkeyUser
# names (never logged); the generated one is applied; all are watched, so
# that a ValkeyUser's password set or rotated is applied at once. StatefulSets: get reads the
# current revision when a cluster's pods are observed.
# Services: get reads a standby's source (a ValkeyCluster's client Service, whose ClusterIP
# the standby replicates from).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# NetworkPolicies (spec.networkPolicy): applied; deleted when the spec no
# longer asks for one, and with the cluster; patched by name to remove the
# ownership annotation when the cluster is unbound.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["create", "patch", "delete"]
# cert-manager Certificates (spec.tls.issuerRef): applied, so cert-manager
# issues the cluster's certificate into <name>-tls; removed with the cluster
# by its owner reference. No test creates one (no cert-manager runs in
# them: the request is authorized as patch and answered 404, which the
# status and an Event then say); create is kept for the first apply on a
# real cluster with cert-manager.
- apiGroups: ["cert-manager.io"]
  resources: ["certificates"]
  verbs: ["create", "patch"]
# Prometheus Operator ServiceMonitors (spec.metrics.serviceMonitor): applied
# on the cluster's metrics Service; deleted when the spec no longer asks for
# one (every apply of a cluster's objects asks, and where the kind is not
# served the API server answers 404, which is that nothing is there);
# patched by name to remove the ownership annotation when the cluster is
# unbound. Without the kind, a spec asking for one is refused in its status.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["create", "patch", "delete"]
# ConfigMaps: each cluster's configuration (applied) and its journal
# (created, replaced with optimistic concurrency, read, and old segments
# deleted after a snapshot).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Data PVCs, deleted with the cluster only when it carries the
# valkey.logbook.dev/delete-pvcs-on-delete annotation; patch adds the
# ownership annotation (valkey.logbook.dev/cr) to the claims of a
# StatefulSet made before it, and removes it when the cluster is unbound.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "patch", "delete"]
# Kubernetes Events for people (decisions, failovers); the journal is the
# record.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
