{{/* The chart's name, truncated to a DNS label. */}}
{{- define "logbook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release>-logbook unless the release name already says logbook. */}}
{{- define "logbook.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select the operator's pods: stable for the release's life. */}}
{{- define "logbook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "logbook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of every object of the chart. */}}
{{- define "logbook.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "logbook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: logbook
{{- end }}

{{- define "logbook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "logbook.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "logbook.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The ValidatingWebhookConfiguration's name: cluster-scoped, so the release's
namespace is in it.
*/}}
{{- define "logbook.webhookConfiguration" -}}
{{ include "logbook.fullname" . }}-{{ .Release.Namespace }}-owned-objects
{{- end }}

{{/*
Whether the validating webhook is configured: "true" or empty. Not with
watchNamespace (its configuration is cluster-wide, and so is the right to
keep its caBundle). The conversion webhook is served by every install.
*/}}
{{- define "logbook.validating" -}}
{{- if and .Values.webhook.enabled (not .Values.watchNamespace) }}true{{ end }}
{{- end }}
