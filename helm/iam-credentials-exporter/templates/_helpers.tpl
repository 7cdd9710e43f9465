{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "iam-credentials-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name of the release's objects: the release name, with the chart name appended
unless the release name already contains it.
*/}}
{{- define "iam-credentials-exporter.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "iam-credentials-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object: commonLabels, then the chart's own (which win).
*/}}
{{- define "iam-credentials-exporter.labels" -}}
{{- include "iam-credentials-exporter.labelsWith" (dict "root" . "extra" list) }}
{{- end }}

{{/*
Labels on an object that has labels of its own: commonLabels, then each map in .extra in order,
then the chart's own labels, which always win so that selectors keep working.
Call as (dict "root" $ "extra" (list .Values.x.labels)).
*/}}
{{- define "iam-credentials-exporter.labelsWith" -}}
{{- $root := .root }}
{{- $labels := deepCopy ($root.Values.commonLabels | default dict) }}
{{- range .extra }}
{{- $labels = mergeOverwrite $labels (deepCopy (. | default dict)) }}
{{- end }}
{{- $own := dict
  "helm.sh/chart" (include "iam-credentials-exporter.chart" $root)
  "app.kubernetes.io/version" (include "iam-credentials-exporter.imageTag" $root | replace "+" "_" | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/managed-by" $root.Release.Service
  "app.kubernetes.io/part-of" (include "iam-credentials-exporter.name" $root) }}
{{- $labels = mergeOverwrite $labels $own (fromYaml (include "iam-credentials-exporter.selectorLabels" $root)) }}
{{- $strings := dict }}
{{- range $k, $v := $labels }}
{{- $_ := set $strings $k (toString $v) }}
{{- end }}
{{- toYaml $strings }}
{{- end }}

{{/*
Labels that select the exporter's pods.
*/}}
{{- define "iam-credentials-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iam-credentials-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "iam-credentials-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iam-credentials-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, or the chart's appVersion.
*/}}
{{- define "iam-credentials-exporter.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Namespace of the release's objects: namespaceOverride, or the release namespace.
*/}}
{{- define "iam-credentials-exporter.namespace" -}}
{{- .Values.namespaceOverride | default .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full image reference: [registry/]repository:tag, or [registry/]repository@digest when
image.digest is set. The registry is image.registry, else global.imageRegistry, else none.
*/}}
{{- define "iam-credentials-exporter.image" -}}
{{- $registry := .Values.image.registry | default ((.Values.global | default dict).imageRegistry) }}
{{- $repository := .Values.image.repository }}
{{- if $registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (include "iam-credentials-exporter.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Whether the exporter serves HTTPS: a tls_server_config in webConfig.config, or webConfig.tls
for a web config kept in an existing Secret.
*/}}
{{- define "iam-credentials-exporter.https" -}}
{{- if or .Values.webConfig.tls (and .Values.webConfig.config (hasKey .Values.webConfig.config "tls_server_config")) -}}
true
{{- end -}}
{{- end }}

{{/*
Whether a web config file is mounted and passed with --web.config.file.
*/}}
{{- define "iam-credentials-exporter.webConfigEnabled" -}}
{{- if or .Values.webConfig.config .Values.webConfig.existingSecret -}}
true
{{- end -}}
{{- end }}

{{/*
Name of the Secret that holds web-config.yml.
*/}}
{{- define "iam-credentials-exporter.webConfigSecretName" -}}
{{- if .Values.webConfig.existingSecret }}
{{- .Values.webConfig.existingSecret }}
{{- else }}
{{- printf "%s-web-config" (include "iam-credentials-exporter.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Whether sharding is on: more than one shard runs as a StatefulSet.
*/}}
{{- define "iam-credentials-exporter.sharded" -}}
{{- if gt (int .Values.shards) 1 -}}
true
{{- end -}}
{{- end }}

{{/*
A probe from values, with httpGet.scheme filled in from the exporter's scheme unless set.
*/}}
{{- define "iam-credentials-exporter.probe" -}}
{{- $probe := deepCopy .probe }}
{{- if and $probe.httpGet (not $probe.httpGet.scheme) }}
{{- $_ := set $probe.httpGet "scheme" (ternary "HTTPS" "HTTP" (eq (include "iam-credentials-exporter.https" .root) "true")) }}
{{- end }}
{{- toYaml $probe }}
{{- end }}
