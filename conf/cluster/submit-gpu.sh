#!/usr/bin/env bash
# SFT on GPU executors (ND4J's CUDA backend). Build first (no GPU needed):
#   mvn -B package -Pcuda -DskipTests
#     -> spark-jobs/target/lathe-jobs.jar   the job jar (Lathe + ND4J's CUDA and CPU classes, 57 MB)
#     -> spark-jobs/target/cuda-lib/*.jar   ND4J's CUDA kernels, JavaCPP's CUDA 11.6 redist, CPU fallback natives (2.6 GB)
# Supported GPUs: compute capability 3.7-8.6 (V100, T4, A100, A10, L4-class); not Hopper (sm_90).
# One GPU and one task per executor: the engine's step runs on the executor's GPU.
# The native jars go to the executors either with --jars (YARN uploads them to the staging
# directory once per application; LATHE_CUDA_LIB=/local/path) or, better for repeated jobs, from a
# path present on every node / in the image (LATHE_CUDA_CLASSPATH='/opt/lathe/cuda-lib/*').
set -euo pipefail
JAR=${LATHE_JAR:-spark-jobs/target/lathe-jobs.jar}
CUDA_LIB=${LATHE_CUDA_LIB:-spark-jobs/target/cuda-lib}
CONF=${LATHE_SPARK_CONF:-conf/cluster/spark-defaults.conf}
GPU=(--conf spark.executor.resource.gpu.amount=1 --conf spark.task.resource.gpu.amount=1
  --conf spark.executor.cores=1 --conf spark.task.cpus=1)
if [ -n "${LATHE_CUDA_CLASSPATH:-}" ]; then # natives already on every node
  NATIVES=(--conf "spark.driver.extraClassPath=$LATHE_CUDA_CLASSPATH"
    --conf "spark.executor.extraClassPath=$LATHE_CUDA_CLASSPATH")
else # ship them with the job
  NATIVES=(--jars "$(ls "$CUDA_LIB"/*.jar | paste -sd, -)")
fi
case "${1:-yarn}" in
  yarn) # YARN 3.x with the GPU resource type enabled (yarn.resource-types=yarn.io/gpu) maps gpu to yarn.io/gpu
    spark-submit --master yarn --deploy-mode client --properties-file "$CONF" "${GPU[@]}" "${NATIVES[@]}" \
      --conf spark.executor.resource.gpu.discoveryScript=./gpu-discovery.sh \
      --files conf/cluster/gpu-discovery.sh --num-executors 8 \
      --class ai.lathe.jobs.SftTrainJob "$JAR" \
      --config sft.yaml --set model=hdfs:///lathe/models/llama --set data=hdfs:///lathe/prepared/sft \
      --set output=hdfs:///lathe/adapters/sft --set distributed.partitions=8 ;;
  k8s) # image from docker/Dockerfile.cuda (natives in /opt/lathe/cuda-lib); NVIDIA device plugin: nvidia.com/gpu
    spark-submit --master "k8s://${K8S_API:-https://kubernetes.default.svc}" --deploy-mode client \
      --properties-file "$CONF" "${GPU[@]}" \
      --conf 'spark.executor.extraClassPath=/opt/lathe/cuda-lib/*' \
      --conf 'spark.driver.extraClassPath=/opt/lathe/cuda-lib/*' \
      --conf spark.executor.resource.gpu.vendor=nvidia.com \
      --conf spark.executor.resource.gpu.discoveryScript=/opt/lathe/conf/cluster/gpu-discovery.sh \
      --conf spark.kubernetes.container.image="${LATHE_IMAGE:-registry.example.com/lathe-cuda:0.1.0}" \
      --conf spark.kubernetes.namespace=lathe --conf spark.executor.instances=8 \
      --class ai.lathe.jobs.SftTrainJob local:///opt/lathe/lathe-jobs.jar \
      --config /opt/lathe/conf/sft.yaml --set model=s3a://models/llama --set data=s3a://lathe/prepared/sft \
      --set output=s3a://lathe/adapters/sft --set distributed.partitions=8 ;;
  *) echo "usage: $0 yarn|k8s" >&2; exit 2 ;;
esac
