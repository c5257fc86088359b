{{/* Names, labels and the values every template shares. */}}

{{- define "lookout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; 40 characters leave room for suffixes (-dispatcher, KubeRay's names). */}}
{{- define "lookout.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "lookout.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lookout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lookout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "lookout.labels" -}}
helm.sh/chart: {{ include "lookout.chart" . }}
{{ include "lookout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lookout
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "lookout.componentSelectorLabels" -}}
{{ include "lookout.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "lookout.componentLabels" -}}
{{ include "lookout.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Ray pods are labelled by KubeRay too, which may set app.kubernetes.io/name: select them by release
and component only. */}}
{{- define "lookout.rayPodSelectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: segmenter
{{- end }}

{{- define "lookout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lookout.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lookout.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* --- Kafka ---------------------------------------------------------------------------------- */}}

{{/* The Strimzi Kafka cluster's name; its bootstrap Service is <name>-kafka-bootstrap. */}}
{{- define "lookout.kafkaClusterName" -}}
{{- include "lookout.fullname" . }}
{{- end }}

{{/* Fully qualified: the KEDA operator resolves it from its own namespace. */}}
{{- define "lookout.kafkaBootstrapServers" -}}
{{- if eq .Values.kafka.mode "strimzi" }}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" (include "lookout.kafkaClusterName" .) .Release.Namespace }}
{{- else }}
{{- .Values.kafka.external.bootstrapServers }}
{{- end }}
{{- end }}

{{/* Topic names as services.contracts.Topics builds them (namespace.topic_prefix + name). */}}
{{- define "lookout.topicPrefix" -}}
{{- $settings := include "lookout.settings" . | fromYaml }}
{{- dig "namespace" "topic_prefix" "" $settings }}
{{- end }}

{{/* --- Redis ---------------------------------------------------------------------------------- */}}

{{- define "lookout.redisUrlSecretName" -}}
{{- if and (eq .Values.redis.mode "external") .Values.redis.external.existingSecret }}
{{- .Values.redis.external.existingSecret }}
{{- else }}
{{- printf "%s-redis-url" (include "lookout.fullname" .) }}
{{- end }}
{{- end }}

{{- define "lookout.redisUrlSecretKey" -}}
{{- if and (eq .Values.redis.mode "external") .Values.redis.external.existingSecret }}
{{- .Values.redis.external.existingSecretKey }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}

{{- define "lookout.redisUrl" -}}
{{- if eq .Values.redis.mode "internal" }}
{{- printf "redis://%s-redis.%s.svc:6379/0" (include "lookout.fullname" .) .Release.Namespace }}
{{- else }}
{{- .Values.redis.external.url }}
{{- end }}
{{- end }}

{{/* --- Segmenter (KubeRay RayService) --------------------------------------------------------- */}}

{{- define "lookout.rayServiceName" -}}
{{- printf "%s-ray" (include "lookout.fullname" .) }}
{{- end }}

{{/* KubeRay's Service in front of the active Ray cluster's head (Ray Client on port 10001). */}}
{{- define "lookout.rayHeadService" -}}
{{- printf "%s-head-svc" (include "lookout.rayServiceName" .) }}
{{- end }}

{{/* Where Ray workers see a checkpoint that is not in the image. */}}
{{- define "lookout.modelsDir" -}}
/models
{{- end }}

{{/* The checkpoint path the segmenter loads, or "" for none (the preset). */}}
{{- define "lookout.checkpointPath" -}}
{{- $checkpoint := .Values.segmenter.checkpoint }}
{{- if eq $checkpoint.source "image" }}
{{- $checkpoint.path }}
{{- else if eq $checkpoint.source "pvc" }}
{{- printf "%s/%s" (include "lookout.modelsDir" .) $checkpoint.pvc.file }}
{{- else if eq $checkpoint.source "initContainer" }}
{{- printf "%s/%s" (include "lookout.modelsDir" .) $checkpoint.initContainer.file }}
{{- end }}
{{- end }}

{{/* SegmenterSettings as YAML: segmenter.settings with the checkpoint. These are the Serve application's
args and the ConfigMap's segmenter section. */}}
{{- define "lookout.segmenterSettings" -}}
{{- $settings := deepCopy .Values.segmenter.settings }}
{{- $path := include "lookout.checkpointPath" . }}
{{- $_ := set $settings "checkpoint" (ternary $path nil (ne $path "")) }}
{{- toYaml $settings }}
{{- end }}

{{/* The Segmenter deployment's Serve options, as services.segmenter.serve_app.deployment_options()
derives them from the settings: a replica accepts two batches (one runs while the next gathers). */}}
{{- define "lookout.segmenterDeployment" -}}
{{- $s := include "lookout.segmenterSettings" . | fromYaml }}
{{- $options := dict
  "name" "Segmenter"
  "ray_actor_options" (dict "num_cpus" $s.num_cpus "num_gpus" $s.num_gpus)
  "max_ongoing_requests" (mul 2 $s.max_batch_size)
  "user_config" (dict "max_batch_size" $s.max_batch_size "batch_wait_timeout_s" $s.batch_wait_timeout_s) }}
{{- if $s.autoscaling }}
{{- $_ := set $options "autoscaling_config" $s.autoscaling }}
{{- else }}
{{- $_ := set $options "num_replicas" ($s.num_replicas | default 1) }}
{{- end }}
{{- toYaml $options }}
{{- end }}

{{/* The Ray Serve config (KubeRay serveConfigV2): the application `lookout up` runs, same import path. */}}
{{- define "lookout.serveConfig" -}}
{{- $app := dict
  "name" .Values.segmenter.settings.app_name
  "import_path" "services.segmenter.serve_app:app_builder"
  "route_prefix" nil
  "args" (include "lookout.segmenterSettings" . | fromYaml)
  "deployments" (list (include "lookout.segmenterDeployment" . | fromYaml)) }}
{{- $config := dict
  "proxy_location" "EveryNode"
  "http_options" (dict "host" "0.0.0.0" "port" 8000)
  "applications" (list $app) }}
{{- toYaml $config }}
{{- end }}

{{/* --- Settings (the ConfigMap) --------------------------------------------------------------- */}}

{{/* Four layers, each over the one before: configs/service.yaml (files/service.yaml links to it), the
chart's cluster defaults (files/production.yaml), the `config` value, then what the chart decides: where
Kafka is, where the API listens, the whole segmenter section (set, not merged, so a null checkpoint
replaces the file's). mergeOverwrite lets every later value win, null and [] included. The Redis URL
and the API key pepper arrive as LOOKOUT_* variables from Secrets. */}}
{{- define "lookout.settings" -}}
{{- $settings := .Files.Get "files/service.yaml" | fromYaml }}
{{- $settings = mergeOverwrite $settings (.Files.Get "files/production.yaml" | fromYaml) (deepCopy .Values.config) }}
{{- $_ := set $settings "segmenter" (include "lookout.segmenterSettings" . | fromYaml) }}
{{- $_ = set (get $settings "kafka") "bootstrap_servers" (include "lookout.kafkaBootstrapServers" .) }}
{{- $_ = set (get $settings "api") "host" "0.0.0.0" }}
{{- $_ = set (get $settings "api") "port" .Values.api.port }}
{{- toYaml $settings }}
{{- end }}

{{/* --- API key pepper (a Secret; LOOKOUT_API__KEY_PEPPER) ----------------------------------- */}}

{{- define "lookout.keyPepperSecretName" -}}
{{- .Values.api.keyPepper.existingSecret | default (printf "%s-api-key-pepper" (include "lookout.fullname" .)) }}
{{- end }}

{{- define "lookout.keyPepperSecretKey" -}}
{{- if .Values.api.keyPepper.existingSecret }}
{{- .Values.api.keyPepper.existingSecretKey }}
{{- else }}
{{- "pepper" }}
{{- end }}
{{- end }}

{{/* The pepper of the chart's Secret: api.keyPepper.value, else the one the release's Secret already holds
(stored keys stay valid across upgrades), else a new random one. `lookup` finds nothing where no cluster
is asked (helm template, --dry-run=client): each such render makes a new pepper. */}}
{{- define "lookout.keyPepper" -}}
{{- if .Values.api.keyPepper.value }}
{{- .Values.api.keyPepper.value }}
{{- else }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "lookout.keyPepperSecretName" .) }}
{{- $kept := dig "data" "pepper" "" ($secret | default dict) }}
{{- ternary ($kept | b64dec) (randAlphaNum 48) (ne $kept "") }}
{{- end }}
{{- end }}

{{/* The pepper variable of a component's containers: (dict "ctx" $ "component" "api"). Every component
loads the whole settings file, and its api section refuses auth_mode api_key without a pepper, so in that
mode every Lookout container carries it; in open mode only the API's (for `lookout tenant`, so that keys
made before a switch to api_key work). */}}
{{- define "lookout.keyPepperEnv" -}}
{{- $settings := include "lookout.settings" .ctx | fromYaml }}
{{- if or (eq .component "api") (eq $settings.api.auth_mode "api_key") }}
- name: LOOKOUT_API__KEY_PEPPER
  valueFrom:
    secretKeyRef:
      name: {{ include "lookout.keyPepperSecretName" .ctx }}
      key: {{ include "lookout.keyPepperSecretKey" .ctx }}
{{- end }}
{{- end }}

{{- define "lookout.configMapName" -}}
{{- printf "%s-config" (include "lookout.fullname" .) }}
{{- end }}

{{- define "lookout.configDir" -}}
/etc/lookout
{{- end }}

{{/* --- Pod parts every Lookout and Ray container shares -------------------------------------- */}}

{{/* The environment of a component's containers: (dict "ctx" $ "component" "api"). */}}
{{- define "lookout.env" -}}
{{- $ctx := .ctx -}}
- name: LOOKOUT_CONFIG
  value: {{ include "lookout.configDir" $ctx }}/service.yaml
- name: LOOKOUT_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "lookout.redisUrlSecretName" $ctx }}
      key: {{ include "lookout.redisUrlSecretKey" $ctx }}
{{- include "lookout.keyPepperEnv" . }}
{{- range $ctx.Values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/* Writable scratch space under a read-only root filesystem, and the settings file. */}}
{{- define "lookout.volumes" -}}
- name: config
  configMap:
    name: {{ include "lookout.configMapName" . }}
- name: tmp
  emptyDir: {}
- name: home
  emptyDir: {}
{{- end }}

{{- define "lookout.volumeMounts" -}}
- name: config
  mountPath: {{ include "lookout.configDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/lookout
{{- end }}

{{/* nodeSelector, tolerations and affinity of a pod spec, or nothing: (dict "values" .Values.api). */}}
{{- define "lookout.podScheduling" -}}
{{- $scheduling := pick .values "nodeSelector" "tolerations" "affinity" }}
{{- range $key, $value := $scheduling }}
{{- if $value }}
{{ $key }}:
  {{- toYaml $value | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod template of a Lookout component Deployment:
(dict "ctx" $ "component" "api" "command" "api" "values" .Values.api), optionally with "env" (a list of
more variables) and "container" (more container fields, as YAML). */}}
{{- define "lookout.componentPodTemplate" -}}
{{- $ctx := .ctx -}}
metadata:
  labels:
    {{- include "lookout.componentLabels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
  annotations:
    # Roll the pods when the settings, the Redis URL or a pepper given in the values change.
    checksum/config: {{ print (include "lookout.settings" $ctx) (include "lookout.redisUrl" $ctx) $ctx.Values.api.keyPepper.value | sha256sum }}
spec:
  serviceAccountName: {{ include "lookout.serviceAccountName" $ctx }}
  automountServiceAccountToken: {{ $ctx.Values.serviceAccount.automountToken }}
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $ctx.Values.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "lookout.image" $ctx }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args:
        {{- include "lookout.args" (dict "ctx" $ctx "command" .command) | nindent 8 }}
      env:
        {{- include "lookout.env" (dict "ctx" $ctx "component" .component) | nindent 8 }}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with .values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      securityContext:
        {{- toYaml $ctx.Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .values.resources | nindent 8 }}
      volumeMounts:
        {{- include "lookout.volumeMounts" $ctx | nindent 8 }}
      {{- with .container }}
      {{- . | nindent 6 }}
      {{- end }}
  volumes:
    {{- include "lookout.volumes" $ctx | nindent 4 }}
  {{- with include "lookout.podScheduling" (dict "values" .values) | trim }}{{ . | nindent 2 }}{{ end }}
{{- end }}

{{/* Arguments of the `lookout` entrypoint for a component. */}}
{{- define "lookout.args" -}}
{{- if .ctx.Values.verboseLogs -}}
- "-v"
{{ end -}}
- {{ .command | quote }}
{{- end }}

{{/* A Ray pod template: (dict "ctx" $ "group" .Values.segmenter.head "container" "ray-head"), with
"worker" true for the worker group (GPUs, the checkpoint volume). KubeRay adds the `ray start` command,
its probes and its labels. */}}
{{- define "lookout.rayPodTemplate" -}}
{{- $ctx := .ctx }}
{{- $segmenter := $ctx.Values.segmenter }}
{{- $checkpoint := $segmenter.checkpoint }}
{{- $models := and .worker (has $checkpoint.source (list "pvc" "initContainer")) }}
{{- $resources := deepCopy .group.resources }}
{{- if and .worker (gt (int .group.gpus) 0) }}
{{- $limits := get $resources "limits" | default dict }}
{{- $_ := set $limits "nvidia.com/gpu" (int .group.gpus) }}
{{- $_ = set $resources "limits" $limits }}
{{- end -}}
metadata:
  labels:
    {{- include "lookout.componentLabels" (dict "ctx" $ctx "component" "segmenter") | nindent 4 }}
spec:
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $ctx.Values.podSecurityContext | nindent 4 }}
  {{- if and $models (eq $checkpoint.source "initContainer") }}
  {{- $init := $checkpoint.initContainer }}
  initContainers:
    # Writes the checkpoint into /models before Ray starts on this worker.
    - name: fetch-checkpoint
      image: "{{ $init.image.repository }}:{{ $init.image.tag }}"
      imagePullPolicy: {{ $init.image.pullPolicy }}
      command:
        {{- toYaml $init.command | nindent 8 }}
      {{- with $init.env }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $ctx.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: models
          mountPath: {{ include "lookout.modelsDir" $ctx }}
        - name: tmp
          mountPath: /tmp
  {{- end }}
  containers:
    - name: {{ .container }}
      image: {{ include "lookout.image" $ctx }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      env:
        {{- include "lookout.env" (dict "ctx" $ctx "component" "segmenter") | nindent 8 }}
        {{- with $segmenter.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if not .worker }}
      ports:
        - name: gcs-server
          containerPort: 6379
        - name: dashboard
          containerPort: 8265
        - name: client
          containerPort: 10001
        - name: serve
          containerPort: 8000
      {{- end }}
      securityContext:
        {{- toYaml $ctx.Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml $resources | nindent 8 }}
      volumeMounts:
        {{- include "lookout.volumeMounts" $ctx | nindent 8 }}
        - name: dshm
          mountPath: /dev/shm
        {{- if $models }}
        - name: models
          mountPath: {{ include "lookout.modelsDir" $ctx }}
          readOnly: true
        {{- end }}
        {{- with $segmenter.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "lookout.volumes" $ctx | nindent 4 }}
    # Ray's object store lives in shared memory; the container default (64 MiB) is far too small.
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ .group.shmSize }}
    {{- if and $models (eq $checkpoint.source "pvc") }}
    - name: models
      persistentVolumeClaim:
        claimName: {{ $checkpoint.pvc.claimName }}
        readOnly: true
    {{- else if $models }}
    - name: models
      emptyDir:
        sizeLimit: {{ $checkpoint.initContainer.sizeLimit }}
    {{- end }}
    {{- with $segmenter.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with include "lookout.podScheduling" (dict "values" .group) | trim }}{{ . | nindent 2 }}{{ end }}
{{- end }}

{{/* --- Checks JSON Schema cannot express, or not clearly (values.schema.json checks each value) --- */}}
{{- define "lookout.validate" -}}
{{- $s := .Values.segmenter.settings }}
{{- if and $s.autoscaling (not (kindIs "invalid" $s.num_replicas)) }}
{{- fail "segmenter.settings: num_replicas and autoscaling are exclusive: set num_replicas: null to use autoscaling" }}
{{- end }}
{{- with $s.autoscaling }}
{{- if gt (int .min_replicas) (int .max_replicas) }}
{{- fail (printf "segmenter.settings.autoscaling: min_replicas=%v exceeds max_replicas=%v" .min_replicas .max_replicas) }}
{{- end }}
{{- end }}
{{- $workers := .Values.segmenter.workers }}
{{- if and (gt (float64 $s.num_gpus) 0.0) (eq (int $workers.gpus) 0) }}
{{- fail (printf "segmenter.settings.num_gpus=%v needs GPU workers: set segmenter.workers.gpus (nvidia.com/gpu per worker pod)" $s.num_gpus) }}
{{- end }}
{{- if gt (float64 $s.num_gpus) (float64 $workers.gpus) }}
{{- fail (printf "segmenter.settings.num_gpus=%v exceeds segmenter.workers.gpus=%v: a replica must fit on one worker" $s.num_gpus $workers.gpus) }}
{{- end }}
{{- if or (gt (int $workers.minReplicas) (int $workers.replicas)) (gt (int $workers.replicas) (int $workers.maxReplicas)) }}
{{- fail (printf "segmenter.workers: need minReplicas (%v) <= replicas (%v) <= maxReplicas (%v)" $workers.minReplicas $workers.replicas $workers.maxReplicas) }}
{{- end }}
{{- $redis := .Values.redis }}
{{- if and (eq $redis.mode "external") (not (or $redis.external.url $redis.external.existingSecret)) }}
{{- fail "redis.mode=external needs redis.external.url or redis.external.existingSecret (a Secret holding the URL)" }}
{{- end }}
{{- $auto := .Values.dispatcher.autoscaling }}
{{- if and $auto.enabled (gt (int $auto.minReplicas) (int $auto.maxReplicas)) }}
{{- fail (printf "dispatcher.autoscaling: minReplicas=%v exceeds maxReplicas=%v" $auto.minReplicas $auto.maxReplicas) }}
{{- end }}
{{- if and $auto.enabled (not .Values.keda.enabled) (eq (int $auto.minReplicas) 0) }}
{{- fail "dispatcher.autoscaling.minReplicas=0 needs KEDA (keda.enabled): the CPU HorizontalPodAutoscaler cannot scale from zero" }}
{{- end }}
{{- $pepper := .Values.api.keyPepper }}
{{- if and $pepper.value $pepper.existingSecret }}
{{- fail "api.keyPepper: set value or existingSecret, not both" }}
{{- end }}
{{- if dig "api" "key_pepper" "" .Values.config }}
{{- fail "config.api.key_pepper: the pepper is a secret and must not sit in the ConfigMap: set api.keyPepper.value or api.keyPepper.existingSecret" }}
{{- end }}
{{- if and (eq .Values.kafka.mode "strimzi") (gt (int .Values.kafka.topics.replicas) (int .Values.kafka.strimzi.replicas)) }}
{{- fail (printf "kafka.topics.replicas=%v exceeds kafka.strimzi.replicas=%v: a topic cannot have more replicas than brokers" .Values.kafka.topics.replicas .Values.kafka.strimzi.replicas) }}
{{- end }}
{{- end }}
