{{/*
The exporter's pod template, shared by the Deployment and the StatefulSet.
*/}}
{{- define "iam-credentials-exporter.podTemplate" -}}
{{- $sharded := eq (include "iam-credentials-exporter.sharded" .) "true" -}}
metadata:
  labels:
    {{- $podLabels := mergeOverwrite (deepCopy (.Values.podLabels | default dict)) (fromYaml (include "iam-credentials-exporter.selectorLabels" .)) }}
    {{- range $k, $v := $podLabels }}
    {{ $k }}: {{ toString $v | quote }}
    {{- end }}
  {{- if or .Values.config .Values.podAnnotations }}
  annotations:
    {{- if .Values.config }}
    # Roll the pods when the configuration changes: the exporter reads it at start-up. (The
    # web config needs no roll: the exporter re-reads it, and its certificates, on change.)
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "iam-credentials-exporter.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: exporter
      image: {{ include "iam-credentials-exporter.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --web.listen-address=:10461
        - --web.telemetry-path={{ .Values.telemetryPath }}
        - --log.level={{ .Values.logLevel }}
        - --log.format={{ .Values.logFormat }}
        {{- with .Values.refreshInterval }}
        - --refresh.interval={{ . }}
        {{- end }}
        {{- if .Values.config }}
        - --config.file=/etc/iam-credentials-exporter/config/config.yml
        {{- end }}
        {{- if eq (include "iam-credentials-exporter.webConfigEnabled" .) "true" }}
        - --web.config.file=/etc/iam-credentials-exporter/web-config/web-config.yml
        {{- end }}
        {{- if $sharded }}
        - --shard.index=$(SHARD_INDEX)
        - --shard.count={{ int .Values.shards }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- if or $sharded .Values.aws.region .Values.extraEnv }}
      env:
        {{- if $sharded }}
        # The pod's ordinal in the StatefulSet, set by Kubernetes 1.28+ as a pod label.
        - name: SHARD_INDEX
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
        {{- end }}
        {{- with .Values.aws.region }}
        - name: AWS_REGION
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - name: http
          containerPort: 10461
          protocol: TCP
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- include "iam-credentials-exporter.probe" (dict "probe" . "root" $) | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- include "iam-credentials-exporter.probe" (dict "probe" . "root" $) | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if or .Values.config (eq (include "iam-credentials-exporter.webConfigEnabled" .) "true") .Values.extraVolumeMounts }}
      volumeMounts:
        {{- if .Values.config }}
        - name: config
          mountPath: /etc/iam-credentials-exporter/config
          readOnly: true
        {{- end }}
        {{- if eq (include "iam-credentials-exporter.webConfigEnabled" .) "true" }}
        - name: web-config
          mountPath: /etc/iam-credentials-exporter/web-config
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
  {{- if or .Values.config (eq (include "iam-credentials-exporter.webConfigEnabled" .) "true") .Values.extraVolumes }}
  volumes:
    {{- if .Values.config }}
    - name: config
      configMap:
        name: {{ include "iam-credentials-exporter.fullname" . }}
    {{- end }}
    {{- if eq (include "iam-credentials-exporter.webConfigEnabled" .) "true" }}
    - name: web-config
      secret:
        secretName: {{ include "iam-credentials-exporter.webConfigSecretName" . }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
