"""The REST and WebSocket APIs' Lambda authorizer (REQUEST type): end-user tokens, optional or required.

- No token: allowed as an anonymous user (tier free), unless JWT_REQUIRED is true (then 401).
- A token that verifies: allowed, with ``sub`` and ``tier`` passed to the integration as the
  authorizer's context (``requestContext.authorizer``), where mangaassist.rest.caller reads them.
- Anything else (malformed, expired, another issuer or audience, a key the JWKS lacks): 401.

The API key (usage plan) is checked by API Gateway as well; this only names the end user.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerResponse
from jwt_tokens import TokenRefused, TokenVerifier, bearer

from mangaassist import settings

logger = Logger()
AUTH = settings.auth()  # read at init: a missing issuer fails the deployment's first call, loudly
verifier = TokenVerifier(issuer=AUTH.issuer, audience=AUTH.audience, jwks_url=AUTH.jwks_url)


def policy(method_arn: str, principal: str, context: dict) -> dict:
    response = APIGatewayAuthorizerResponse.from_route_arn(method_arn, principal_id=principal, context=context)
    response.allow_all_routes()
    return response.asdict()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    token = bearer(event.get("headers"), event.get("queryStringParameters"))
    if token is None and not AUTH.required:
        return policy(event["methodArn"], "anonymous", {"tier": "free"})
    if not token:
        raise Exception("Unauthorized")  # noqa: TRY002 (the exact message API Gateway turns into a 401)
    try:
        identity = verifier.verify(token)
    except TokenRefused as exc:
        logger.info("token refused", extra={"reason": str(exc)[:200]})
        raise Exception("Unauthorized") from None  # noqa: TRY002
    return policy(event["methodArn"], identity.subject, {"sub": identity.subject, "tier": identity.tier})
