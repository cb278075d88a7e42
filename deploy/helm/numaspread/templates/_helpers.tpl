{{/* The release's object name: the release name when it already says
"numaspread" (helm install numaspread ...), else RELEASE-numaspread. */}}
{{- define "numaspread.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "numaspread.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Pod labels: stable across chart upgrades. */}}
{{- define "numaspread.podLabels" -}}
{{ include "numaspread.selectorLabels" . }}
app.kubernetes.io/component: nri-plugin
{{- end -}}

{{- define "numaspread.labels" -}}
{{ include "numaspread.podLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* plugin_index as two digits: "90" stays, 5 (from --set) becomes "05". */}}
{{- define "numaspread.pluginIndex" -}}
{{- $idx := .Values.config.nri.plugin_index -}}
{{- if kindIs "string" $idx -}}{{ $idx }}{{- else -}}{{ printf "%02d" (int $idx) }}{{- end -}}
{{- end -}}

{{/* The folder of the NRI socket, mounted at the same path in the pod. */}}
{{- define "numaspread.socketDir" -}}
{{- dir .Values.config.nri.socket -}}
{{- end -}}
