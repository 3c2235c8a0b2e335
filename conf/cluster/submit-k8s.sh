#!/usr/bin/env bash
# Submits the SFT job to Kubernetes with the image from docker/Dockerfile (client mode from a
# pod or a machine that executors can reach; see Spark's running-on-kubernetes guide).
set -euo pipefail
K8S=${K8S_API:-https://kubernetes.default.svc}
IMAGE=${LATHE_IMAGE:-registry.example.com/lathe:0.1.0}
spark-submit --master "k8s://$K8S" --deploy-mode client \
  --properties-file conf/cluster/spark-defaults.conf \
  --conf spark.kubernetes.container.image="$IMAGE" \
  --conf spark.kubernetes.namespace=lathe \
  --conf spark.executor.instances=8 \
  --conf spark.kubernetes.executor.request.cores=4 \
  --class ai.lathe.jobs.SftTrainJob local:///opt/lathe/lathe-jobs.jar \
  --config /opt/lathe/conf/sft.yaml --set model=s3a://models/llama --set data=s3a://lathe/prepared/sft \
  --set output=s3a://lathe/adapters/sft
