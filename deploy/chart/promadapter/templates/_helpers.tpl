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
  {{- with include "promadapter.apiServiceAnnotations" .root | fromYaml }}
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
  {{- else if .root.Values.tls.selfSigned }}
  caBundle: {{ index (include "promadapter.selfSignedCert" .root | fromJson) "ca.crt" }}
  {{- end }}
  {{- if .root.Values.tls.insecureSkipTLSVerify }}
  insecureSkipTLSVerify: true
  {{- end }}
{{- end -}}


{{/* The name the kube-apiserver checks in the adapter's serving certificate: <service>.<namespace>.svc. */}}
{{- define "promadapter.serviceDNSName" -}}
{{- printf "%s.%s.svc" (include "promadapter.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The Secret with the adapter's serving certificate, mounted at /etc/promadapter/tls: tls.secretName, else
"<fullname>-serving-cert" when the chart (tls.selfSigned) or cert-manager (tls.certManager.enabled) writes
it; empty when the adapter generates its own certificate at start-up. */}}
{{- define "promadapter.tlsSecretName" -}}
{{- if .Values.tls.secretName -}}
{{- .Values.tls.secretName -}}
{{- else if or .Values.tls.selfSigned .Values.tls.certManager.enabled -}}
{{- printf "%s-serving-cert" (include "promadapter.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The APIServices' annotations: apiServiceAnnotations, plus cert-manager's CA injector pointing at the
chart's Certificate when tls.certManager.enabled. */}}
{{- define "promadapter.apiServiceAnnotations" -}}
{{- $annotations := deepCopy (default dict .Values.apiServiceAnnotations) -}}
{{- if .Values.tls.certManager.enabled -}}
{{- $_ := set $annotations "cert-manager.io/inject-ca-from" (printf "%s/%s-serving-cert" .Release.Namespace (include "promadapter.fullname" .)) -}}
{{- end -}}
{{- with $annotations }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* tls.selfSigned: the serving certificate as JSON {"tls.crt", "tls.key", "ca.crt"}, each base64 PEM.
The data of the Secret the release already has when it holds all three (so `helm upgrade` keeps the
certificate and the APIServices' caBundle); else a new CA and a certificate for
<service>.<namespace>.svc signed by it, both valid 10 years (3650 days). Made once per rendering and
kept in .Values.tls, which every template of the chart shares, so that the Secret and each APIService
get the same one. Without a cluster to look in (`helm template`, `--dry-run` unless `--dry-run=server`), it
is new every time. */}}
{{- define "promadapter.selfSignedCert" -}}
{{- if not (hasKey .Values.tls "generatedServingCert") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "promadapter.tlsSecretName" .) -}}
{{- $data := dict -}}
{{- if and $existing $existing.data (index $existing.data "tls.crt") (index $existing.data "tls.key") (index $existing.data "ca.crt") -}}
{{- $data = pick $existing.data "tls.crt" "tls.key" "ca.crt" -}}
{{- else -}}
{{- $dnsName := include "promadapter.serviceDNSName" . -}}
{{- $ca := genCA (printf "%s-ca" (include "promadapter.fullname" .)) 3650 -}}
{{- $cert := genSignedCert $dnsName nil (list $dnsName) 3650 $ca -}}
{{- $data = dict "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) "ca.crt" ($ca.Cert | b64enc) -}}
{{- end -}}
{{- $_ := set .Values.tls "generatedServingCert" $data -}}
{{- end -}}
{{- toJson .Values.tls.generatedServingCert -}}
{{- end -}}
