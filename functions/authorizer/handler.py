"""The REST and WebSocket APIs' Lambda authorizer (REQUEST type): end-user tokens, optional or required,
and the API key for WebSocket handshakes.

- No token: allowed as an anonymous user (tier free), unless JWT_REQUIRED is true (then 401).
- A token that verifies: allowed, with ``sub`` and ``tier`` passed to the integration as the
  authorizer's context (``requestContext.authorizer``), where mangaassist.rest.caller reads them.
- Anything else (malformed, expired, another issuer or audience, a key the JWKS lacks, or any
  token where the deployment names no issuer): 401.
- The API key the caller presented (``x-api-key`` header, or ``?api_key=`` where browsers cannot
  set headers: WebSocket handshakes) is returned as ``usageIdentifierKey``; the WebSocket API takes
  its key from there (``$context.authorizer.usageIdentifierKey``) and checks it against its usage
  plan, as the REST API checks the header itself.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerResponse
from jwt_tokens import TokenRefused, TokenVerifier, api_key, bearer

from mangaassist import settings

logger = Logger()
AUTH = settings.auth()  # read at init: a half-configured issuer fails the deployment's first call, loudly
verifier = TokenVerifier(issuer=AUTH.issuer, audience=AUTH.audience, jwks_url=AUTH.jwks_url) if AUTH.issuer else None


def policy(event: dict, principal: str, context: dict) -> dict:
    key = api_key(event.get("headers"), event.get("queryStringParameters"))
    response = APIGatewayAuthorizerResponse.from_route_arn(event["methodArn"], principal_id=principal, context=context,
                                                           usage_identifier_key=key)
    response.allow_all_routes()
    return response.asdict()


def unauthorized(reason: str) -> Exception:
    logger.info("refused", extra={"reason": reason[:200]})
    return Exception("Unauthorized")  # the exact message API Gateway turns into a 401


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    token = bearer(event.get("headers"), event.get("queryStringParameters"))
    if token is None and not AUTH.required:
        return policy(event, "anonymous", {"tier": "free"})
    if not token:
        raise unauthorized("no token")
    if verifier is None:
        raise unauthorized("this deployment names no token issuer")
    try:
        identity = verifier.verify(token)
    except TokenRefused as exc:
        raise unauthorized(str(exc)) from None
    return policy(event, identity.subject, {"sub": identity.subject, "tier": identity.tier})
