# Packer template: an Amazon Linux 2023 AMI with ecr-ptc installed and set up
# for one account and region, so instances pull public images from that
# account's ECR pull-through cache from their first boot.
#
#   packer build \
#     -var account_id=123456789012 -var region=us-east-1 \
#     -var instance_profile=ecr-ptc-ami-build \
#     -var package=../../dist/ecr-ptc-1.0.0-1.x86_64.rpm .
#
# The build instance needs an instance profile whose role may call
# ecr:GetAuthorizationToken and ecr:DescribePullThroughCacheRules (setup
# reads the rules) - the same permissions the instances get later.
#
# Written for the amazon-ebs builder as bundled with Packer 1.6 (validated
# with `packer validate` 1.6.6). With Packer 1.10 or later, which ships no
# builders, first run `packer plugins install github.com/hashicorp/amazon`
# (see README.md).

variable "account_id" {
  type        = string
  description = "AWS account whose ECR pull-through cache the instances use, such as 123456789012."
}

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "Region of the build, of the AMI and of the ECR registry."
}

variable "package" {
  type        = string
  description = "Path of the ecr-ptc .rpm to install, for the architecture of instance_type (make package writes it to dist/)."
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "Build instance type; use a Graviton type (t4g.small) with an arm64 package and source_arch = \"arm64\"."
}

variable "source_arch" {
  type        = string
  default     = "x86_64"
  description = "Architecture of the source AMI: x86_64 or arm64."
}

variable "instance_profile" {
  type        = string
  description = "IAM instance profile of the build instance (ECR read access, see above)."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the build instance; empty for the default VPC."
}

variable "ami_name_prefix" {
  type        = string
  default     = "al2023-ecr-ptc"
  description = "Prefix of the AMI name; the build time is appended."
}

locals {
  registry  = "${var.account_id}.dkr.ecr.${var.region}.amazonaws.com"
  timestamp = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "amazon-ebs" "al2023" {
  region               = var.region
  instance_type        = var.instance_type
  iam_instance_profile = var.instance_profile
  subnet_id            = var.subnet_id
  ssh_username         = "ec2-user"
  ami_name             = "${var.ami_name_prefix}-${var.source_arch}-${local.timestamp}"
  ami_description      = "Amazon Linux 2023 with ecr-ptc set up for ${local.registry}"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-*-${var.source_arch}"
      architecture        = var.source_arch
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  # With the amazon plugin 1.0 or later (Packer 1.7+), also require IMDSv2:
  #   metadata_options { http_tokens = "required" }
  #   imds_support = "v2.0"
  # Packer 1.6's bundled builder does not know these settings.

  tags = {
    Name               = "${var.ami_name_prefix}-${var.source_arch}"
    "ecr-ptc:registry" = local.registry
  }
}

build {
  sources = ["source.amazon-ebs.al2023"]

  # A container engine for setup to configure. Drop this for a base image
  # that brings its own (EKS nodes: see README.md).
  provisioner "shell" {
    inline = [
      "sudo dnf install -y -q docker containerd",
      "sudo systemctl enable --now containerd.service docker.service",
    ]
  }

  provisioner "file" {
    source      = var.package
    destination = "/tmp/ecr-ptc.rpm"
  }

  provisioner "shell" {
    environment_vars = [
      "AWS_REGION=${var.region}",
      "ECR_PTC_REGISTRY=${local.registry}",
    ]
    inline = [
      "set -eu",
      "sudo dnf install -y -q /tmp/ecr-ptc.rpm",
      "rm -f /tmp/ecr-ptc.rpm",
      # Pin the account and region in the config file, so the shim does not
      # depend on which role an instance gets.
      "sudo sed -i -e \"s|^#region = .*|region = \\\"$AWS_REGION\\\"|\" -e \"s|^#registry = .*|registry = \\\"$ECR_PTC_REGISTRY\\\"|\" /etc/ecr-ptc/config.toml",
      # Configure every engine found, enable and start ecr-ptc-mirror.service.
      "sudo AWS_REGION=$AWS_REGION ecr-ptc setup --restart",
      "ecr-ptc rewrite docker.io/library/busybox:latest",
      # doctor arrives in a later release: run it when this one has it.
      "if ecr-ptc doctor --help >/dev/null 2>&1; then sudo ecr-ptc doctor; else echo 'ecr-ptc doctor not available; skipped'; fi",
    ]
  }

  # Leave no ECR token or build-time state in the image.
  provisioner "shell" {
    inline = [
      "sudo systemctl stop ecr-ptc-mirror.service",
      "sudo rm -rf /var/cache/ecr-ptc /var/cache/private/ecr-ptc /root/.cache/ecr-ptc /home/ec2-user/.cache/ecr-ptc",
      "sudo journalctl --rotate --vacuum-time=1s >/dev/null 2>&1 || true",
    ]
  }
}
