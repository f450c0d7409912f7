{{/* The name of the release's objects: the release name, or "<release>-promadapter" when the release name does not contain "promadapter". */}}
{{- define "promadapter.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "promadapter.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "promadapter.labels" -}}
{{ include "promadapter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "promadapter.serviceAccountName" -}}
{{- default (include "promadapter.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* One APIService; call with (dict "root" $ "group" "metrics.k8s.io" "version" "v1beta1" "versionPriority" 100). */}}
{{- define "promadapter.apiservice" -}}
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: {{ .version }}.{{ .group }}
  labels:
    {{- include "promadapter.labels" .root | nindent 4 }}
  {{- with .root.Values.apiServiceAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  group: {{ .group }}
  version: {{ .version }}
  service:
    name: {{ include "promadapter.fullname" .root }}
    namespace: {{ .root.Release.Namespace }}
    port: 443
  groupPriorityMinimum: 100
  versionPriority: {{ .versionPriority }}
  {{- if .root.Values.tls.caBundle }}
  caBundle: {{ .root.Values.tls.caBundle }}
  {{- end }}
  {{- if .root.Values.tls.insecureSkipTLSVerify }}
  insecureSkipTLSVerify: true
  {{- end }}
{{- end -}}
