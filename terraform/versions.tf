# The tested provider series: the committed .terraform.lock.hcl pins 5.100.0 with its hashes.
terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100.0"
    }
  }
}
