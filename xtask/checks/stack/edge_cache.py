"""The edge cache (infra/edge.yaml): a CloudFront distribution in front of the
API in staging and prod that caches only the public catalogue GETs, keyed on
exactly the query parameters docs/openapi.yaml gives them, never shares an
answer to a token, compresses, speaks HTTPS only, adds the security headers,
and leaves the regional WAF the real client (the viewer's address in a header
the rate rule reads) and the only way in (a secret origin header)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .model import ENVIRONMENTS, ROOT, Stack, condition, evaluate, getatt, ref, root_parameters, security_headers, web_acl

# AWS's managed policies (the same ids in every account).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_VIEWER_AND_CLOUDFRONT = "33f36d7e-f396-46d9-90e0-52428a34d9dc"
# The public catalogue reads: the only routes an edge may keep an answer of.
CATALOGUE_READS = {"/api/v1/products", "/api/v1/products/{id}"}


def catalogue_query_parameters() -> set[str]:
    """Every query parameter docs/openapi.yaml gives the catalogue's GETs."""
    document = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    names = set()
    for path in CATALOGUE_READS:
        for parameter in document["paths"][path]["get"].get("parameters", []):
            if "$ref" in parameter:
                parameter = document["components"]["parameters"][parameter["$ref"].split("/")[-1]]
            if parameter.get("in") == "query":
                names.add(parameter["name"])
    return names


def pattern_matches(pattern: str, path: str) -> bool:
    """CloudFront's path pattern: `*` any characters (slashes too), `?` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, path) is not None


class EdgeCacheChecks:
    def edge_cache(self, problems: list[str]) -> None:
        root_conditions = self.root.source.get("Conditions", {})
        nested = self.root.source["Resources"].get("Edge")
        for env in ENVIRONMENTS:
            params = root_parameters(self.root, env, self.config)
            on = nested is not None and ("Condition" not in nested or condition(nested["Condition"], params, root_conditions))
            if env in ("staging", "prod") and not on:
                problems.append(f"{env}: no edge cache (a CloudFront distribution in front of the API, infra/edge.yaml)")
            if env == "dev" and on:
                problems.append("dev deploys the edge cache by default (it should only where asked)")
            if on:
                self.functions_read_edge_address(env, params, root_conditions, problems)
        # Behind the edge the API answers only through it: what clients and
        # the health canary are given must be the distribution.
        canary = self.root.source["Resources"].get("HealthCanaryStack", {}).get("Properties", {}).get("Parameters", {})
        for what, value in [("the ApiUrl output", self.root.source.get("Outputs", {}).get("ApiUrl", {}).get("Value")),
                            ("the health canary's ApiUrl", canary.get("ApiUrl"))]:
            choice = (value or {}).get("Fn::If", [None, None])
            if choice[0] != "ServesThroughEdge" or "Edge.Outputs." not in str(choice[1]):
                problems.append(f"{what} is not the edge's address where the edge is on (the API refuses anything else)")
        edge = self.by_name.get("Edge")
        if edge is None:
            return
        self.distribution(edge, problems)
        self.waf_behind_edge(edge, problems)

    # -- the distribution

    def distribution(self, edge: Stack, problems: list[str]) -> None:
        (_, distribution), = edge.of_type("AWS::CloudFront::Distribution").items()
        config = distribution["Properties"]["DistributionConfig"]
        behaviours = [("default", config["DefaultCacheBehavior"])] + [
            (b["PathPattern"], b) for b in config.get("CacheBehaviors", [])
        ]
        routes = list(self.root.resources["Api"]["Properties"]["Body"]["paths"])
        expected_query = catalogue_query_parameters()
        headers_policy = self.security_headers_policy(edge, problems)
        for pattern, behaviour in behaviours:
            where = f"behaviour {pattern}"
            if behaviour.get("Compress") is not True:
                problems.append(f"{where}: no compression at the edge (Compress)")
            if behaviour.get("ViewerProtocolPolicy") not in ("https-only", "redirect-to-https"):
                problems.append(f"{where}: viewers may use plain HTTP ({behaviour.get('ViewerProtocolPolicy', 'allow-all')})")
            if ref(behaviour.get("ResponseHeadersPolicyId")) != headers_policy:
                problems.append(f"{where}: not the security headers' response headers policy")
            viewer_function = self.viewer_function(edge)
            if viewer_function is None or not any(
                f.get("EventType") == "viewer-request" and (getatt(f.get("FunctionARN")) or ("",))[0] == viewer_function
                for f in behaviour.get("FunctionAssociations", [])
            ):
                problems.append(f"{where}: the viewer-address function does not run on it (the WAF and the functions would see CloudFront's address)")
            cache = self.cache_policy(edge, behaviour.get("CachePolicyId"))
            origin = behaviour.get("OriginRequestPolicyId")
            caches = cache is not None and int(cache.get("MaxTTL", 0)) > 0
            if pattern == "default":
                if behaviour.get("CachePolicyId") != CACHING_DISABLED:
                    problems.append("the default behaviour caches (not the managed CachingDisabled policy)")
                if origin != ALL_VIEWER_EXCEPT_HOST:
                    problems.append("the default behaviour does not forward the viewer's request (AllViewerExceptHostHeader)")
                continue
            if not caches:
                continue
            # What a cached behaviour serves: only the catalogue's reads.
            served = {route for route in routes if pattern_matches(pattern, route.replace("{id}", "p1"))}
            if not served or not served <= CATALOGUE_READS:
                problems.append(f"{where} caches {sorted(served) or 'nothing the API serves'}, not only the catalogue reads")
            if set(behaviour.get("CachedMethods", [])) - {"GET", "HEAD"}:
                problems.append(f"{where} caches {behaviour['CachedMethods']}, not only GET and HEAD")
            if int(cache.get("MinTTL", 0)) != 0:
                problems.append(f"{where}: MinTTL {cache.get('MinTTL')} keeps answers marked private or no-store (it must be 0)")
            if int(cache.get("DefaultTTL", 0)) != 0:
                problems.append(f"{where}: DefaultTTL {cache.get('DefaultTTL')} keeps answers that gave no Cache-Control")
            key = cache["ParametersInCacheKeyAndForwardedToOrigin"]
            if not (key.get("EnableAcceptEncodingGzip") and key.get("EnableAcceptEncodingBrotli")):
                problems.append(f"{where}: the key does not keep gzip and brotli copies apart (compression)")
            query = key["QueryStringsConfig"]
            if query.get("QueryStringBehavior") != "whitelist" or set(query.get("QueryStrings", [])) != expected_query:
                problems.append(
                    f"{where}: query strings in the key are {query.get('QueryStringBehavior')} {sorted(query.get('QueryStrings', []))}, "
                    f"not exactly the catalogue's {sorted(expected_query)} (docs/openapi.yaml)"
                )
            if key["CookiesConfig"].get("CookieBehavior") != "none":
                problems.append(f"{where}: cookies in the key")
            keyed = {h.lower() for h in key["HeadersConfig"].get("Headers", [])} if key["HeadersConfig"].get("HeaderBehavior") == "whitelist" else set()
            if key["HeadersConfig"].get("HeaderBehavior") not in ("none", "whitelist"):
                problems.append(f"{where}: the key's headers are {key['HeadersConfig'].get('HeaderBehavior')}")
            if "origin" not in keyed:
                problems.append(f"{where}: Origin is not in the key (CORS echoes it: one origin's answer would serve another)")
            if keyed - {"authorization", "origin"}:
                problems.append(f"{where}: headers {sorted(keyed - {'authorization', 'origin'})} in the key split the cache for nothing")
            # A token must never reach the origin under a shared key: either it is
            # not forwarded at all, or it is part of the key (one entry per token,
            # which the origin's `private, no-cache` keeps from being stored).
            if origin in (ALL_VIEWER, ALL_VIEWER_EXCEPT_HOST, ALL_VIEWER_AND_CLOUDFRONT):
                problems.append(f"{where}: forwards every viewer header (Authorization too) outside the cache key")
            forwarded = self.origin_request_headers(edge, origin)
            if "authorization" in forwarded:
                problems.append(f"{where}: its origin request policy forwards Authorization outside the cache key (a token's answer under a shared key)")
        self.viewer_security(config, problems)

    def cache_policy(self, edge: Stack, policy: Any) -> dict | None:
        if policy == CACHING_DISABLED:
            return None
        name = ref(policy)
        resource = edge.resources.get(name or "", {})
        if resource.get("Type") != "AWS::CloudFront::CachePolicy":
            raise ValueError(f"cache policy {policy!r} is neither CachingDisabled nor one of the edge stack's")
        return resource["Properties"]["CachePolicyConfig"]

    def origin_request_headers(self, edge: Stack, policy: Any) -> set[str]:
        resource = edge.resources.get(ref(policy) or "", {})
        if resource.get("Type") != "AWS::CloudFront::OriginRequestPolicy":
            return set()
        headers = resource["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]
        if headers.get("HeaderBehavior") in ("allViewer", "allViewerAndWhitelistCloudFront", "allExcept"):
            return {"authorization"}
        return {h.lower() for h in headers.get("Headers", [])}

    def viewer_function(self, edge: Stack) -> str | None:
        functions = edge.of_type("AWS::CloudFront::Function")
        for name, function in functions.items():
            code = function["Properties"]["FunctionCode"]
            header = self.edge_client_ip_header(edge)
            if function["Properties"].get("AutoPublish") is True and re.search(
                rf"request\.headers\[['\"]{re.escape(header)}['\"]\]\s*=\s*\{{\s*value:\s*event\.viewer\.ip\s*\}}", code
            ):
                return name
        return None

    def edge_client_ip_header(self, edge: Stack) -> str:
        return edge.expanded["Outputs"]["ClientIpHeader"]["Value"]

    def security_headers_policy(self, edge: Stack, problems: list[str]) -> str | None:
        wanted = security_headers()
        for name, policy in edge.of_type("AWS::CloudFront::ResponseHeadersPolicy").items():
            config = policy["Properties"]["ResponseHeadersPolicyConfig"].get("SecurityHeadersConfig", {})
            hsts = config.get("StrictTransportSecurity", {})
            sent = {
                "x-content-type-options": "nosniff" if "ContentTypeOptions" in config else None,
                "x-frame-options": config.get("FrameOptions", {}).get("FrameOption"),
                "strict-transport-security": f"max-age={hsts.get('AccessControlMaxAgeSec')}" + ("; includeSubDomains" if hsts.get("IncludeSubdomains") else "") if hsts else None,
                "content-security-policy": config.get("ContentSecurityPolicy", {}).get("ContentSecurityPolicy"),
                "referrer-policy": config.get("ReferrerPolicy", {}).get("ReferrerPolicy"),
            }
            differ = {h: (sent.get(h), v) for h, v in wanted.items() if h in sent and sent[h] != v}
            if differ:
                problems.append(f"{name} sends other security headers than the functions: {differ}")
            return name
        problems.append("no response headers policy adds the security headers at the edge")
        return None

    def viewer_security(self, config: dict, problems: list[str]) -> None:
        for origin in config["Origins"]:
            custom = origin.get("CustomOriginConfig", {})
            if custom.get("OriginProtocolPolicy") != "https-only" or custom.get("OriginSSLProtocols") != ["TLSv1.2"]:
                problems.append(f"origin {origin['Id']}: not HTTPS with TLS 1.2 only")
        certificate = config.get("ViewerCertificate", {})
        branches = certificate["Fn::If"][1:] if "Fn::If" in certificate else [certificate]
        custom = [b for b in branches if "AcmCertificateArn" in b]
        if not custom or any(b.get("MinimumProtocolVersion") != "TLSv1.2_2021" or b.get("SslSupportMethod") != "sni-only" for b in custom):
            problems.append("a public name for the distribution is not served with TLS 1.2 or later only (TLSv1.2_2021, sni-only)")

    # -- what the regional side sees behind the edge

    def waf_behind_edge(self, edge: Stack, problems: list[str]) -> None:
        waf = self.by_name["Waf"]
        acl = web_acl(waf, behind_edge=True)
        passed = self.root.source["Resources"]["Waf"]["Properties"]["Parameters"]
        secret = passed.get("OriginVerifySecretArn", {}).get("Fn::If", [None, None])
        if secret[0] != "ServesThroughEdge" or getatt(secret[1]) != ("Edge", "Outputs.OriginVerifySecretArn"):
            problems.append("the WAF is not given the edge's origin secret where the edge is on")
        header = passed.get("ClientIpHeader", {}).get("Fn::If", [None, None])
        if header[0] != "ServesThroughEdge" or getatt(header[1]) != ("Edge", "Outputs.ClientIpHeader"):
            problems.append("the WAF is not given the edge's client address header where the edge is on")
        # Every rule that judges a client by its address reads the edge's header.
        (rate,) = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
        statement = rate["Statement"]["RateBasedStatement"]
        forwarded = statement.get("ForwardedIPConfig", {})
        if statement.get("AggregateKeyType") != "FORWARDED_IP" or ref(forwarded.get("HeaderName")) != "ClientIpHeader":
            problems.append("behind the edge the rate rule counts CloudFront's address, not the client's (FORWARDED_IP on the edge's header)")
        # Only CloudFront, which adds the secret header, gets through.
        (_, distribution), = edge.of_type("AWS::CloudFront::Distribution").items()
        origin_headers = {
            h["HeaderName"].lower(): h["HeaderValue"]
            for o in distribution["Properties"]["DistributionConfig"]["Origins"]
            for h in o.get("OriginCustomHeaders", [])
        }
        value = origin_headers.get("x-origin-verify", {})
        if value != {"Fn::Sub": "{{resolve:secretsmanager:${OriginVerifySecret}:SecretString:value}}"} or edge.resources.get("OriginVerifySecret", {}).get("Type") != "AWS::SecretsManager::Secret":
            problems.append("the distribution does not add the origin secret (x-origin-verify from Secrets Manager) to origin requests")
        guards = [
            r for r in acl["Rules"]
            if "Block" in r.get("Action", {})
            and r["Statement"].get("NotStatement", {}).get("Statement", {}).get("ByteMatchStatement", {}).get("FieldToMatch") == {"SingleHeader": {"Name": "x-origin-verify"}}
            and r["Statement"]["NotStatement"]["Statement"]["ByteMatchStatement"].get("PositionalConstraint") == "EXACTLY"
            and r["Statement"]["NotStatement"]["Statement"]["ByteMatchStatement"].get("SearchString") == {"Fn::Sub": "{{resolve:secretsmanager:${OriginVerifySecretArn}:SecretString:value}}"}
        ]
        if not guards:
            problems.append("behind the edge the regional WAF lets in requests without the origin secret (the API is reachable around the cache)")
        if any(r["Statement"].get("NotStatement") for r in web_acl(waf, behind_edge=False)["Rules"] if "Block" in r.get("Action", {})):
            problems.append("without the edge the origin-secret rule still blocks (dev would refuse every request)")
        logging = next(iter(waf.of_type("AWS::WAFv2::LoggingConfiguration").values()))["Properties"]
        redacted = {f.get("SingleHeader", {}).get("Name", "").lower() for f in logging.get("RedactedFields", [])}
        if "x-origin-verify" not in redacted:
            problems.append("the WAF log would show the origin secret (x-origin-verify not redacted)")

    def functions_read_edge_address(self, env: str, params: dict, conditions: dict, problems: list[str]) -> None:
        variables = self.root.source["Globals"]["Function"]["Environment"]["Variables"]
        header = evaluate(variables.get("CLIENT_IP_HEADER", ""), params, conditions)
        edge = self.by_name.get("Edge")
        wanted = self.edge_client_ip_header(edge) if edge else "x-shop-client-ip"
        if header != wanted:
            problems.append(f"{env}: behind the edge the functions read the client's address from {header!r}, not {wanted!r}")
