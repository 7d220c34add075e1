{{- define "podium.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "podium.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "podium.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "podium.secretName" -}}
{{- if .Values.secret.create -}}{{ include "podium.fullname" . }}{{- else -}}{{ required "secret.existingSecret is required when secret.create is false" .Values.secret.existingSecret }}{{- end -}}
{{- end -}}

{{- define "podium.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* PODIUM_DB and PODIUM_TOKEN from the Secret, and the log settings. */}}
{{- define "podium.env" -}}
- name: PODIUM_DB
  valueFrom: {secretKeyRef: {name: {{ include "podium.secretName" . }}, key: db}}
- name: PODIUM_TOKEN
  valueFrom: {secretKeyRef: {name: {{ include "podium.secretName" . }}, key: token, optional: true}}
- name: PODIUM_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: PODIUM_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}
