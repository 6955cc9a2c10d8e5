# P(-1) Option A (run-process P(-1).5): the image workflow (.github/workflows/image.yml) pushes git-<sha> to the
# platform repository with a short-lived session from GitHub's OIDC token: no stored AWS keys (docs/decisions.md D18).
# One OIDC provider per account and URL: where the account already has GitHub's, import it
# (`terraform import aws_iam_openid_connect_provider.github arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com`).

locals {
  github_oidc_host = "token.actions.githubusercontent.com"
  # ARNs from known values, not computed attributes: the trust and the grant stay readable in the plan.
  github_oidc_arn = "arn:aws:iam::${var.aws_account_id}:oidc-provider/${local.github_oidc_host}"
  ecr_repo_arn    = "arn:aws:ecr:${var.aws_region}:${var.aws_account_id}:repository/${var.ecr_repo_name}"
}

# No thumbprint: IAM verifies GitHub's OIDC endpoint through its own trusted CAs (optional in provider 5.100.0).
resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
}

# Only this repository's workflow runs on the push ref may assume the role: `sub` names the repository and the
# ref exactly (no wildcard), `aud` is STS. The claim names are written out, as checkov's CKV_AWS_358 reads them.
data "aws_iam_policy_document" "ecr_push_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_owner}/${var.github_repository}:ref:${var.github_push_ref}"]
    }
  }
}

resource "aws_iam_role" "ecr_push" {
  name                 = var.role_names["ecr_push"]
  assume_role_policy   = data.aws_iam_policy_document.ecr_push_trust.json
  max_session_duration = 3600

  depends_on = [aws_iam_openid_connect_provider.github] # the trusted provider exists before the role names it
}

data "aws_iam_policy_document" "ecr_push" {
  statement {
    sid = "EcrLogin"
    # `docker login` needs a registry token, and ecr:GetAuthorizationToken is an account-level call that accepts
    # no resource-level scope (AWS's service authorization reference): "*" here is the only valid resource. The
    # token alone reads or writes nothing; the statement below scopes what it can be used for.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "PushPlatformImage" # layer upload and manifest put for git-<sha>; DescribeImages reads back its digest
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
    ]
    resources = [local.ecr_repo_arn]
  }
}

resource "aws_iam_role_policy" "ecr_push" {
  name   = "${var.role_names["ecr_push"]}-access"
  role   = aws_iam_role.ecr_push.id
  policy = data.aws_iam_policy_document.ecr_push.json
}
