{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "modelops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "modelops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "modelops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelops.labels" -}}
helm.sh/chart: {{ include "modelops.chart" . }}
{{ include "modelops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: modelops
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "modelops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image; also the default model-server and drift-job image. */}}
{{- define "modelops.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Rules for the namespaced resources the operator reads and writes. Used by the ClusterRole in
cluster-wide mode and by one Role per watched namespace otherwise. No wildcards: every group,
resource and verb is named (a test asserts it). docs/install.md gives the reason for each rule.
*/}}
{{- define "modelops.namespacedRules" -}}
# The four custom resources: watched by kopf, patched for finalizers and kopf's annotations.
- apiGroups: ["modelops.dev"]
  resources: ["modelversions", "modeldeployments", "driftmonitors", "modelpolicies"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["modelops.dev"]
  resources: ["modelversions/status", "modeldeployments/status", "driftmonitors/status", "modelpolicies/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["modelops.dev"]
  resources: ["modelversions/finalizers", "modeldeployments/finalizers", "driftmonitors/finalizers", "modelpolicies/finalizers"]
  verbs: ["update"]
# RBAC escalation prevention: a retraining Job's Role (made by the operator) lets it create its
# ModelVersion, so the operator must hold `create` too. The operator itself never creates one.
- apiGroups: ["modelops.dev"]
  resources: ["modelversions"]
  verbs: ["create"]
# Events for every transition (kopf posts core/v1 Events; events.k8s.io for newer clients).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Children of a ModelDeployment (model-server Deployments, Services, ConfigMaps) and of a
# DriftMonitor (CronJob, retraining Jobs, the drift job's ServiceAccount).
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["batch"]
  resources: ["cronjobs", "jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# The drift job's Role and RoleBinding (it writes its result to driftmonitors/status).
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# RBAC escalation prevention: the API server lets the operator create a Role only with
# permissions the operator holds itself. The drift job's Role grants `get` on Secrets (data-source
# credentials), so the operator needs `get` too; it also checks that a ModelDeployment's
# artifactCredentials Secret exists. No list/watch: it cannot enumerate Secrets.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Exact traffic split for canaries when a Gateway API HTTPRoute is configured; the route's
# parent Gateways are only read, to hold a rollout whose Gateway does not exist.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways"]
  verbs: ["get"]
{{- end -}}

{{/* Cluster-scoped reads kopf needs in every mode. */}}
{{- define "modelops.clusterRules" -}}
# kopf checks that the CRDs it serves exist and watches them for changes.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
# kopf resolves and watches the namespaces it serves.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end -}}

{{/* The plurals of the CRDs in files/crds/ (a YAML list, sorted by file name). */}}
{{- define "modelops.crdPlurals" -}}
{{- $plurals := list -}}
{{- range $path, $_ := .Files.Glob "files/crds/*.yaml" -}}
{{- $plurals = append $plurals ($.Files.Get $path | fromYaml).spec.names.plural -}}
{{- end -}}
{{- toYaml $plurals -}}
{{- end -}}

{{/* A label map as a label selector string: k1=v1,k2=v2 (sorted by key). */}}
{{- define "modelops.selectorString" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Labels of the `helm test` resources (not the operator's selector labels). */}}
{{- define "modelops.testLabels" -}}
helm.sh/chart: {{ include "modelops.chart" . }}
app.kubernetes.io/name: {{ include "modelops.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: modelops
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Annotations of a `helm test` hook resource; (dict "weight" "N"). */}}
{{- define "modelops.testHook" -}}
helm.sh/hook: test
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
