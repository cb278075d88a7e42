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

{{/* numaspread.checkConfig fails, naming the key, when a config value is
missing or null. values.schema.json requires every key too; this catches
what reaches the templates anyway, e.g. `helm upgrade --reuse-values` from
an older chart, which renders with the old chart's values and so without
the keys a newer chart adds (the configuration would read `memory = null`). */}}
{{- define "numaspread.checkConfig" -}}
{{- $cfg := index .Values "config" | default dict -}}
{{- $want := dict
  "nri" (list "socket" "plugin_name" "plugin_index")
  "policy" (list "mode" "spread" "max_numa_nodes" "full_cores" "reserved_cpus" "strict_reserved" "allowed_cpus" "min_shared_cpus" "memory" "on_insufficient" "annotations")
  "log" (list "level" "format") -}}
{{- range $section := keys $want | sortAlpha -}}
{{- $sec := index $cfg $section -}}
{{- range $key := index $want $section -}}
{{- if or (not (kindIs "map" $sec)) (not (hasKey $sec $key)) (kindIs "invalid" (index $sec $key)) -}}
{{- fail (printf "config.%s.%s is missing from the values. `helm upgrade --reuse-values` keeps the previous release's values, without the keys a newer chart adds: upgrade with --reset-then-reuse-values (Helm 3.14 or later) or with -f your values file" $section $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The configuration's restart-only sections: numaspread applies [nri],
[topology] and [metrics] only when it starts (a reload logs a warning and
keeps the running values). The ConfigMap renders them from here, and the pod
template carries a checksum of [nri] and [topology], so that `helm upgrade`
changing one of them restarts the pods, while [policy] and [log] changes
reload in place. The metrics address is the container's --metrics-address
flag, part of the pod template itself. */}}
{{- define "numaspread.config.nri" -}}
[nri]
socket = {{ .Values.config.nri.socket | toJson }}
plugin_name = {{ .Values.config.nri.plugin_name | toJson }}
plugin_index = {{ include "numaspread.pluginIndex" . | toJson }}
{{- end -}}

{{- define "numaspread.config.topology" -}}
[topology]
# The chart mounts the host's {{ include "numaspread.hostSysfsSystem" . }} (all of
# sysfs that numaspread reads) at /host/sys/devices/system, read-only.
sysfs = "/host/sys"
{{- end -}}

{{- define "numaspread.config.metrics" -}}
[metrics]
# Off here: with metrics.enabled the chart passes --metrics-address=:PORT
# (every interface of the pod's network: the probes and Prometheus connect
# to the pod IP), which overrides this key.
address = ""
{{- end -}}

{{- define "numaspread.restartOnlyChecksum" -}}
{{- list (include "numaspread.config.nri" .) (include "numaspread.config.topology" .) | join "\n" | sha256sum -}}
{{- end -}}

{{/* The host folder the sysfs volume mounts: the part of sysfs numaspread
reads. */}}
{{- define "numaspread.hostSysfsSystem" -}}
{{- printf "%s/devices/system" (trimSuffix "/" .Values.hostSysfs) -}}
{{- end -}}
