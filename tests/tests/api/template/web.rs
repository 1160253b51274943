//! The web console in AWS, read from `template.yaml` and `infra/deploy.sh` against
//! what the code and the console need (CloudFront and Cognito have no emulator):
//! a private bucket only this distribution reads (origin access control), `/api/*`
//! to the HTTP API uncached with the caller's Authorization header, a client-side
//! route fallback that never touches API answers, security headers, a public
//! code-flow console client that redirects only to the console's own domain and whose
//! ID token the authorizer and `Identity` accept, `config.json` with every key the
//! console reads, and no secret anywhere in the template.

use super::{if_branches, is_ref, resources_of_type, strings, tagged, template};
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use std::process::Command;
use tierdesk::domain::permissions::Role;
use tierdesk::http::identity::Identity;
use tierdesk_tests::{read_repo_file, repo_root};

// CloudFront's managed policies (ids fixed by AWS, the same in every account).
const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";
const ALL_VIEWER: &str = "216adef6-5c7f-47e4-b989-5492eafa07d3";

/// The keys of `/config.json` the console reads (the contract between `make deploy`
/// and `web/`).
const CONFIG_KEYS: [&str; 5] = ["auth", "authority", "clientId", "redirectUri", "postLogoutRedirectUri"];

fn distribution(t: &Yaml) -> &Yaml {
    let found = resources_of_type(t, "AWS::CloudFront::Distribution");
    let [(name, _)] = &found[..] else { panic!("one CloudFront distribution: {found:?}") };
    &t["Resources"][name.as_str()]["Properties"]["DistributionConfig"]
}

fn sub_text(v: &Yaml) -> &str {
    match tagged(v) {
        Some((tag, inner)) if tag == "Sub" => inner.as_str().unwrap_or_else(|| panic!("!Sub text: {v:?}")),
        _ => panic!("expected a !Sub: {v:?}"),
    }
}

fn getatt_text(v: &Yaml) -> &str {
    match tagged(v) {
        Some((tag, inner)) if tag == "GetAtt" => inner.as_str().unwrap_or_else(|| panic!("!GetAtt text: {v:?}")),
        _ => panic!("expected a !GetAtt: {v:?}"),
    }
}

fn origin<'a>(dist: &'a Yaml, id: &str) -> &'a Yaml {
    dist["Origins"]
        .as_sequence()
        .expect("Origins")
        .iter()
        .find(|o| o["Id"].as_str() == Some(id))
        .unwrap_or_else(|| panic!("no origin {id}"))
}

fn api_behaviour(dist: &Yaml) -> &Yaml {
    let behaviours = dist["CacheBehaviors"].as_sequence().expect("CacheBehaviors");
    let api: Vec<&Yaml> = behaviours.iter().filter(|b| b["PathPattern"].as_str() == Some("/api/*")).collect();
    let [api] = api[..] else { panic!("one /api/* behaviour: {behaviours:?}") };
    api
}

fn is_no_value(v: &Yaml) -> bool {
    is_ref(v, "AWS::NoValue")
}

#[test]
fn the_web_bucket_is_private_and_only_this_distribution_reads_it_through_origin_access_control() {
    let t = template();
    let bucket = &t["Resources"]["WebBucket"];
    assert_eq!(bucket["Type"].as_str(), Some("AWS::S3::Bucket"));
    let block = &bucket["Properties"]["PublicAccessBlockConfiguration"];
    for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[setting].as_bool(), Some(true), "WebBucket {setting}");
    }
    let ownership = strings(&Yaml::Sequence(
        bucket["Properties"]["OwnershipControls"]["Rules"]
            .as_sequence()
            .expect("OwnershipControls")
            .iter()
            .map(|r| r["ObjectOwnership"].clone())
            .collect(),
    ));
    assert_eq!(ownership, vec!["BucketOwnerEnforced"], "ACLs off");
    let encryption = &bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert!(encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"].as_str().is_some(), "encrypted at rest");

    // The distribution reaches it through an origin access control (SigV4, always),
    // not a public website endpoint nor a legacy origin access identity.
    let dist = distribution(&t);
    let web = origin(dist, dist["DefaultCacheBehavior"]["TargetOriginId"].as_str().expect("default origin"));
    assert_eq!(getatt_text(&web["DomainName"]), "WebBucket.RegionalDomainName");
    assert_eq!(web["S3OriginConfig"]["OriginAccessIdentity"].as_str(), Some(""), "no legacy OAI");
    let oac_name = getatt_text(&web["OriginAccessControlId"]).strip_suffix(".Id").expect("!GetAtt <oac>.Id");
    let oac = &t["Resources"][oac_name];
    assert_eq!(oac["Type"].as_str(), Some("AWS::CloudFront::OriginAccessControl"));
    let config = &oac["Properties"]["OriginAccessControlConfig"];
    assert_eq!(config["OriginAccessControlOriginType"].as_str(), Some("s3"));
    assert_eq!(config["SigningBehavior"].as_str(), Some("always"));
    assert_eq!(config["SigningProtocol"].as_str(), Some("sigv4"));

    // The bucket policy allows exactly one reader: CloudFront's service principal,
    // only for requests made on behalf of this distribution, only GetObject.
    let policies: Vec<_> = resources_of_type(&t, "AWS::S3::BucketPolicy")
        .into_iter()
        .filter(|(_, p)| is_ref(&p["Properties"]["Bucket"], "WebBucket"))
        .collect();
    let [(_, policy)] = &policies[..] else { panic!("one policy on WebBucket: {policies:?}") };
    let statements = policy["Properties"]["PolicyDocument"]["Statement"].as_sequence().expect("Statement");
    let allows: Vec<&Yaml> = statements.iter().filter(|s| s["Effect"].as_str() == Some("Allow")).collect();
    let [allow] = allows[..] else { panic!("exactly one Allow statement: {allows:?}") };
    assert_eq!(allow["Principal"]["Service"].as_str(), Some("cloudfront.amazonaws.com"), "{allow:?}");
    assert_eq!(allow["Action"].as_str(), Some("s3:GetObject"), "read only: {allow:?}");
    assert_eq!(sub_text(&allow["Resource"]), "${WebBucket.Arn}/*");
    let source = &allow["Condition"]["StringEquals"]["AWS:SourceArn"];
    let distribution_name = resources_of_type(&t, "AWS::CloudFront::Distribution")[0].0.clone();
    assert!(
        sub_text(source).ends_with(&format!(":distribution/${{{distribution_name}}}")),
        "only this distribution: {source:?}"
    );
    for statement in statements {
        if statement["Effect"].as_str() == Some("Deny") {
            continue;
        }
        assert_ne!(statement["Principal"].as_str(), Some("*"), "no public Allow: {statement:?}");
    }
}

#[test]
fn api_paths_go_to_the_http_api_uncached_with_the_callers_authorization_header() {
    let t = template();
    let dist = distribution(&t);
    let api = api_behaviour(dist);
    let origin = origin(dist, api["TargetOriginId"].as_str().expect("TargetOriginId"));
    assert!(
        sub_text(&origin["DomainName"]).starts_with("${HttpApi}.execute-api."),
        "the HTTP API's own endpoint: {origin:?}"
    );
    assert_eq!(origin["CustomOriginConfig"]["OriginProtocolPolicy"].as_str(), Some("https-only"));
    assert_eq!(api["ViewerProtocolPolicy"].as_str(), Some("https-only"));
    let methods: BTreeSet<String> = strings(&api["AllowedMethods"]).into_iter().collect();
    for m in ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"] {
        assert!(methods.contains(m), "/api/* allows {m}: {methods:?}");
    }
    // Nothing the API answers is cached (answers depend on the caller's token).
    assert_eq!(api["CachePolicyId"].as_str(), Some(CACHING_DISABLED), "Managed-CachingDisabled");
    // CloudFront drops a viewer's Authorization header before a custom origin unless
    // it is in the cache key or, with caching disabled, the origin request policy is
    // one of the managed all-viewer policies (a custom origin request policy may not
    // name Authorization: CloudFront refuses it). Of those two, AllViewer would also
    // send CloudFront's Host, and API Gateway answers 403 to a host it does not own.
    let request_policy = api["OriginRequestPolicyId"].as_str().expect("OriginRequestPolicyId");
    assert_ne!(request_policy, ALL_VIEWER, "Host must not reach API Gateway");
    assert_eq!(request_policy, ALL_VIEWER_EXCEPT_HOST_HEADER, "Managed-AllViewerExceptHostHeader");
    assert!(
        resources_of_type(&t, "AWS::CloudFront::OriginRequestPolicy").is_empty(),
        "no custom origin request policy (it could not carry Authorization)"
    );
    // The header it forwards is the one the authorizer reads.
    let authorizer = &t["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"];
    assert_eq!(authorizer["IdentitySource"].as_str(), Some("$request.header.Authorization"));
    // Every route of the API is under /api/, so all of it is reachable on the console's host.
    let routes = devtools::routes::from_template(&read_repo_file("template.yaml")).unwrap();
    assert!(!routes.is_empty());
    for route in &routes {
        assert!(route.path.starts_with("/api/"), "{} {} is outside /api/*", route.method, route.path);
    }
}

/// Runs the SPA rewrite function's code in Node the way CloudFront calls it
/// (`handler(event)` with `event.request.uri`) and returns the rewritten URIs.
fn rewritten_by_function(code: &str, uris: &[&str]) -> Vec<String> {
    let script = format!(
        "{code}\nconst uris = {};\nconsole.log(JSON.stringify(uris.map(u => handler({{request: {{uri: u, headers: {{}}}}}}).uri)));",
        serde_json::to_string(uris).unwrap()
    );
    let out = Command::new("node")
        .arg("-e")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("node (the console's build needs it too) did not run: {e}"));
    assert!(out.status.success(), "node: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the rewritten URIs")
}

#[test]
fn the_client_side_route_fallback_serves_index_html_and_never_touches_api_answers() {
    let t = template();
    let dist = distribution(&t);
    // Custom error responses apply to every behaviour: an API 403/404 would come
    // back as the app's HTML with another status.
    assert!(dist["CustomErrorResponses"].is_null(), "no CustomErrorResponses: {:?}", dist["CustomErrorResponses"]);
    let api = api_behaviour(dist);
    assert!(api["FunctionAssociations"].is_null(), "no function on /api/*: {api:?}");
    assert!(api["LambdaFunctionAssociations"].is_null(), "no Lambda@Edge on /api/*: {api:?}");
    let associations = dist["DefaultCacheBehavior"]["FunctionAssociations"].as_sequence().expect("a function");
    let [association] = &associations[..] else { panic!("one function on the default behaviour") };
    assert_eq!(association["EventType"].as_str(), Some("viewer-request"), "before the cache and S3");
    let function_name = getatt_text(&association["FunctionARN"])
        .strip_suffix(".FunctionMetadata.FunctionARN")
        .expect("!GetAtt <function>.FunctionMetadata.FunctionARN");
    let function = &t["Resources"][function_name];
    assert_eq!(function["Type"].as_str(), Some("AWS::CloudFront::Function"));
    assert_eq!(function["Properties"]["AutoPublish"].as_bool(), Some(true), "the live stage runs it");
    let code = function["Properties"]["FunctionCode"].as_str().expect("FunctionCode");
    // The prospect's quote page: the emailed link, a 43-character base64url token
    // (letters, digits, '-' and '_': never a dot, so never taken for a file).
    let quote_link = "/quote/Xq3_-9aZb0cD1eF2gH3iJ4kL5mN6oP7qR8sT9uV0wXy";
    let uris = [
        "/",
        "/partners/p_01",
        "/quotes/new",
        quote_link,
        "/assets/index-4f9a2c1b.js",
        "/assets/index-77aa.css",
        "/config.json",
        "/favicon.svg",
    ];
    let rewritten = rewritten_by_function(code, &uris);
    assert_eq!(
        rewritten,
        vec![
            "/index.html",
            "/index.html",
            "/index.html",
            "/index.html",
            "/assets/index-4f9a2c1b.js",
            "/assets/index-77aa.css",
            "/config.json",
            "/favicon.svg"
        ],
        "client-side routes become /index.html, files pass unchanged"
    );
    assert_eq!(dist["DefaultRootObject"].as_str(), Some("index.html"));
}

/// The console's CSP as deployed with the created pool: the !Join's text with each
/// !If's first branch.
fn content_security_policy(v: &Yaml) -> String {
    match tagged(v) {
        Some((tag, inner)) if tag == "Join" => {
            let parts = inner.as_sequence().expect("!Join");
            let separator = parts[0].as_str().unwrap_or_default();
            let items = parts[1].as_sequence().expect("!Join items");
            items.iter().map(content_security_policy).collect::<Vec<_>>().join(separator)
        }
        Some((tag, _)) if tag == "If" => content_security_policy(if_branches(v).1),
        Some((tag, _)) if tag == "Sub" => sub_text(v).to_string(),
        _ => v.as_str().unwrap_or_else(|| panic!("CSP part {v:?}")).to_string(),
    }
}

#[test]
fn every_response_carries_the_security_headers_and_the_csp_names_no_remote_source() {
    let t = template();
    let dist = distribution(&t);
    assert_eq!(dist["HttpVersion"].as_str(), Some("http2and3"));
    let default = &dist["DefaultCacheBehavior"];
    assert_eq!(default["ViewerProtocolPolicy"].as_str(), Some("redirect-to-https"));
    assert_eq!(default["Compress"].as_bool(), Some(true));
    assert_eq!(default["CachePolicyId"].as_str(), Some(CACHING_OPTIMIZED), "Managed-CachingOptimized");
    for behaviour in [default, api_behaviour(dist)] {
        let (tag, name) = tagged(&behaviour["ResponseHeadersPolicyId"]).expect("a response headers policy");
        assert_eq!(tag, "Ref");
        let policy = &t["Resources"][name.as_str().unwrap()];
        assert_eq!(policy["Type"].as_str(), Some("AWS::CloudFront::ResponseHeadersPolicy"));
        let headers = &policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"];
        let hsts = &headers["StrictTransportSecurity"];
        assert!(hsts["AccessControlMaxAgeSec"].as_u64().unwrap_or(0) >= 31_536_000, "HSTS a year or more");
        assert!(headers["ContentTypeOptions"]["Override"].as_bool() == Some(true), "nosniff");
        assert_eq!(headers["FrameOptions"]["FrameOption"].as_str(), Some("DENY"));
        let csp = content_security_policy(&headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]);
        let directives: Vec<(&str, Vec<&str>)> = csp
            .split(';')
            .filter_map(|d| {
                let mut words = d.split_whitespace();
                words.next().map(|name| (name, words.collect()))
            })
            .collect();
        let sources = |name: &str| {
            directives
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| panic!("CSP has no {name}: {csp}"))
        };
        // Nothing the page runs, styles or shows comes from another host.
        for name in ["default-src", "script-src", "style-src", "font-src", "img-src"] {
            for source in sources(name) {
                assert!(
                    ["'self'", "data:", "blob:"].contains(&source),
                    "{name} allows {source}: the built app brings everything ({csp})"
                );
            }
        }
        // It talks to itself (the API) and to the pool's sign-in endpoints only.
        let connect = sources("connect-src");
        assert_eq!(
            connect,
            vec![
                "'self'",
                "https://cognito-idp.${AWS::Region}.amazonaws.com",
                "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"
            ],
            "{csp}"
        );
        assert_eq!(sources("frame-ancestors"), vec!["'none'"]);
        assert_eq!(sources("object-src"), vec!["'none'"]);
    }
}

#[test]
fn the_console_client_is_public_code_flow_and_redirects_only_to_the_distributions_domain() {
    let t = template();
    let console = &t["Resources"]["ConsoleAppClient"]["Properties"];
    // A browser keeps no secret: public client; the code flow (oidc-client-ts adds PKCE).
    assert_eq!(console["GenerateSecret"].as_bool(), Some(false));
    assert!(console["ClientSecret"].is_null());
    assert_eq!(console["PreventUserExistenceErrors"].as_str(), Some("ENABLED"));
    assert!(
        resources_of_type(&t, "AWS::Cognito::UserPoolDomain").len() == 1,
        "a hosted UI domain for the sign-in pages"
    );
    for validity in ["AccessTokenValidity", "IdTokenValidity", "RefreshTokenValidity"] {
        assert!(console[validity].as_u64().is_some(), "{validity} set explicitly");
    }
    // With the console's domain known: code flow, OIDC scopes, redirects there; before
    // (the first deploy), no OAuth at all rather than a redirect anywhere else.
    let (condition, enabled, disabled) = if_branches(&console["AllowedOAuthFlowsUserPoolClient"]);
    assert_eq!(condition, "HasConsoleDomain");
    assert_eq!((enabled.as_bool(), disabled.as_bool()), (Some(true), Some(false)));
    let (condition, flows, none) = if_branches(&console["AllowedOAuthFlows"]);
    assert_eq!(condition, "HasConsoleDomain");
    assert_eq!(strings(flows), vec!["code"], "authorization code only (no implicit flow)");
    assert!(is_no_value(none));
    let (_, scopes, none) = if_branches(&console["AllowedOAuthScopes"]);
    assert!(strings(scopes).contains(&"openid".to_string()), "an OIDC client");
    assert!(is_no_value(none));
    let (condition, callbacks, none) = if_branches(&console["CallbackURLs"]);
    assert_eq!(condition, "HasConsoleDomain");
    let callbacks = callbacks.as_sequence().expect("callback URLs");
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(sub_text(&callbacks[0]), "https://${ConsoleDomain}/auth/callback");
    assert!(is_no_value(none));
    let (_, logouts, none) = if_branches(&console["LogoutURLs"]);
    let logouts = logouts.as_sequence().expect("logout URLs");
    assert_eq!(logouts.len(), 1, "{logouts:?}");
    assert_eq!(sub_text(&logouts[0]), "https://${ConsoleDomain}/");
    assert!(is_no_value(none));
    let (tag, args) = tagged(&t["Conditions"]["HasConsoleDomain"]).expect("HasConsoleDomain");
    assert_eq!(tag, "Not");
    let (tag, equals) = tagged(&args[0]).expect("!Equals");
    assert_eq!(tag, "Equals");
    assert!(is_ref(&equals[0], "ConsoleDomain") && equals[1].as_str() == Some(""), "{equals:?}");

    // ConsoleDomain is the distribution's domain: `make deploy` reads the output that
    // is exactly that and passes it back as the parameter.
    let outputs = &t["Outputs"];
    let distribution_name = resources_of_type(&t, "AWS::CloudFront::Distribution")[0].0.clone();
    assert_eq!(getatt_text(&outputs["ConsoleDomainName"]["Value"]), format!("{distribution_name}.DomainName"));
    assert_eq!(sub_text(&outputs["ConsoleUrl"]["Value"]), format!("https://${{{distribution_name}.DomainName}}/"));
    let script = read_repo_file("infra/deploy.sh");
    assert!(script.contains("output \"$outputs\" ConsoleDomainName"), "deploy.sh reads ConsoleDomainName");
    assert!(script.contains("ConsoleDomain=\\\"$console_domain\\\""), "deploy.sh passes it as ConsoleDomain");
}

/// A payload-2.0 event as API Gateway builds it from a token with these claims.
fn event_with_claims(claims: serde_json::Value) -> lambda_http::Request {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "GET /api/partner/usage", "rawPath": "/api/partner/usage",
        "rawQueryString": "", "headers": {},
        "requestContext": {
            "accountId": "1", "apiId": "a", "domainName": "x", "domainPrefix": "x",
            "http": {"method": "GET", "path": "/api/partner/usage", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": "r", "routeKey": "GET /api/partner/usage", "stage": "$default",
            "time": "05/Dec/2026:00:00:00 +0000", "timeEpoch": 0,
            "authorizer": {"jwt": {"claims": claims, "scopes": null}}
        },
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("event")
}

#[test]
fn the_authorizer_accepts_the_console_clients_id_token_which_alone_carries_the_partner_id() {
    let t = template();
    // The authorizer's audience (created pool) names the console client: its ID
    // token's aud.
    let jwt = &t["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"];
    let (_, created, _) = if_branches(&jwt["audience"]);
    assert!(
        created.as_sequence().expect("audience list").iter().any(|a| is_ref(a, "ConsoleAppClient")),
        "the console's tokens are accepted: {created:?}"
    );
    // config.json's authority is the issuer the authorizer checks.
    let (_, issuer, _) = if_branches(&jwt["issuer"]);
    let (_, authority, _) = if_branches(&t["Outputs"]["ConsoleAuthority"]["Value"]);
    assert_eq!(sub_text(authority), sub_text(issuer), "the console signs in where the API's issuer is");
    // The ID token carries what Identity reads because the client may read it.
    let readable = strings(&t["Resources"]["ConsoleAppClient"]["Properties"]["ReadAttributes"]);
    for attribute in ["custom:partner_id", "email"] {
        assert!(readable.contains(&attribute.to_string()), "{attribute} in the console's ID token");
    }
    // A Cognito ID token of a partner (as the authorizer passes its claims on).
    let id_token = event_with_claims(serde_json::json!({
        "sub": "2f0c1e6a-user", "aud": "console-client-id", "token_use": "id",
        "cognito:groups": "[partner]", "custom:partner_id": "p_acme", "email": "ana@acme.example",
        "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab"
    }));
    let id = Identity::from_request(&id_token, tierdesk::domain::permissions::Grants::SEED_000)
        .expect("identity from the ID token");
    assert_eq!(id.roles, vec![Role::Partner]);
    assert_eq!(id.partner_id.as_deref(), Some("p_acme"), "the partner's own account");
    assert_eq!(id.email.as_deref(), Some("ana@acme.example"));
    // The same user's access token: groups, but no custom:partner_id and no email,
    // so a partner could not reach their own account with it.
    let access_token = event_with_claims(serde_json::json!({
        "sub": "2f0c1e6a-user", "client_id": "console-client-id", "token_use": "access",
        "cognito:groups": "[partner]", "scope": "openid email profile", "username": "2f0c1e6a-user",
        "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab"
    }));
    let id = Identity::from_request(&access_token, tierdesk::domain::permissions::Grants::SEED_000)
        .expect("identity from the access token");
    assert_eq!(id.partner_id, None, "why the console sends its ID token");
    assert_eq!(id.email, None);
}

/// `infra/deploy.sh config-json` on these outputs (describe-stacks shape).
fn config_json(outputs: &[(&str, &str)], env: &[(&str, &str)]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("tierdesk-config-json-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("outputs.json");
    let json: Vec<serde_json::Value> =
        outputs.iter().map(|(k, v)| serde_json::json!({"OutputKey": k, "OutputValue": v})).collect();
    std::fs::write(&file, serde_json::to_string(&json).unwrap()).unwrap();
    let mut command = Command::new("bash");
    command.arg(repo_root().join("infra/deploy.sh")).arg("config-json").arg(&file).env_remove("CONSOLE_CLIENT_ID");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("bash infra/deploy.sh config-json");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn make_deploy_writes_every_config_json_key_of_the_console_contract_from_the_stack_outputs() {
    let t = template();
    // Every output the deploy script reads exists in the template.
    let script = read_repo_file("infra/deploy.sh");
    for output in [
        "ConsoleDomainName",
        "ConsoleAuthority",
        "ConsoleClientId",
        "CognitoDomain",
        "WebBucketName",
        "DistributionId",
        "ConsoleUrl",
    ] {
        assert!(script.contains(output), "deploy.sh reads {output}");
        assert!(!t["Outputs"][output].is_null(), "the template outputs {output}");
    }
    let domain = "d111111abcdef8.cloudfront.net";
    let authority = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12";
    let outputs = [
        ("ConsoleDomainName", domain),
        ("ConsoleAuthority", authority),
        ("ConsoleClientId", "4a1b2c3d4e5f"),
        ("CognitoDomain", "https://tierdesk-1.auth.eu-west-1.amazoncognito.com"),
        ("WebBucketName", "tierdesk-webbucket-1"),
        ("DistributionId", "E2ABC"),
    ];
    let out = config_json(&outputs, &[]);
    assert!(out.status.success(), "config-json: {}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config.json is JSON");
    for key in CONFIG_KEYS {
        assert!(config[key].as_str().is_some_and(|v| !v.is_empty()), "config.json has {key}: {config}");
    }
    assert_eq!(config["auth"], "cognito");
    assert_eq!(config["authority"], authority);
    assert_eq!(config["clientId"], "4a1b2c3d4e5f");
    // Exactly the URLs the console client allows, with ConsoleDomain = the distribution's.
    let console = &t["Resources"]["ConsoleAppClient"]["Properties"];
    let callback = sub_text(&if_branches(&console["CallbackURLs"]).1[0]).replace("${ConsoleDomain}", domain);
    let logout = sub_text(&if_branches(&console["LogoutURLs"]).1[0]).replace("${ConsoleDomain}", domain);
    assert_eq!(config["redirectUri"], callback.as_str());
    assert_eq!(config["postLogoutRedirectUri"], logout.as_str());

    // An existing pool has no ConsoleClientId output: refused unless given.
    let without_client: Vec<_> = outputs.iter().copied().filter(|(k, _)| *k != "ConsoleClientId").collect();
    let out = config_json(&without_client, &[]);
    assert!(!out.status.success(), "no client id, no config.json");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CONSOLE_CLIENT_ID"));
    let out = config_json(&without_client, &[("CONSOLE_CLIENT_ID", "byo-client")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["clientId"], "byo-client");
}

#[test]
fn no_secret_is_in_the_template_and_no_output_reveals_one() {
    let text = read_repo_file("template.yaml");
    // Stripe keys and signing secrets, AWS access key ids: the prefix followed by a
    // key's worth of characters (the comments' "sk_..." placeholders are not keys).
    for (prefix, length) in [("sk_live_", 8), ("sk_test_", 8), ("rk_live_", 8), ("whsec_", 8), ("AKIA", 16)] {
        for (at, _) in text.match_indices(prefix) {
            let key = text[at + prefix.len()..].chars().take_while(char::is_ascii_alphanumeric).count();
            assert!(key < length, "template.yaml holds a credential: {}", &text[at..at + prefix.len() + key]);
        }
    }
    for marker in ["-----BEGIN", "aws_secret_access_key"] {
        assert!(!text.contains(marker), "template.yaml contains {marker}");
    }
    assert!(!text.contains(".ClientSecret"), "no app client secret is referenced (outputs, environment)");
    let t = template();
    // Only the service client (a backend) has a secret; the console is public.
    for (name, client) in resources_of_type(&t, "AWS::Cognito::UserPoolClient") {
        let secret = client["Properties"]["GenerateSecret"].as_bool();
        if name == "ServiceAppClient" {
            assert_eq!(secret, Some(true));
        } else {
            assert_eq!(secret, Some(false), "{name} is a public client");
        }
    }
    // The Stripe credentials are referenced by ARN, never given as a value.
    let stripe = &t["Parameters"]["StripeSecretArn"];
    assert!(stripe["Default"].is_null(), "no default secret ARN");
    assert!(stripe["AllowedPattern"].as_str().is_some_and(|p| p.contains("secretsmanager")));
    for (name, parameter) in t["Parameters"].as_mapping().unwrap() {
        let name = name.as_str().unwrap_or_default().to_lowercase();
        if ["password", "apikey", "token"].iter().any(|w| name.contains(w)) {
            panic!("parameter {name} looks like a secret: use Secrets Manager ({parameter:?})");
        }
    }
}

/// Stand-ins for `aws`, `sam` and `npm` that record each call (arguments separated
/// by tabs, one call a line) and behave like the real ones where the deploy depends
/// on it: describe-stacks fails with "does not exist" until a `sam deploy` created
/// the stack; `npm run build` writes a Vite-like dist/; `s3 cp` keeps what it uploads.
const FAKE_AWS: &str = r#"#!/usr/bin/env bash
{ printf 'aws'; printf '\t%s' "$@"; printf '\n'; } >>"$FAKE_STATE/calls.log"
case "$1 $2" in
    "cloudformation describe-stacks")
        if [ -f "$FAKE_STATE/outputs.json" ]; then cat "$FAKE_STATE/outputs.json"; else
            echo "An error occurred (ValidationError) when calling the DescribeStacks operation: Stack with id $4 does not exist" >&2
            exit 254
        fi ;;
    "s3 cp") cp "$3" "$FAKE_STATE/uploaded-$(basename "$4")" ;;
    "cloudfront create-invalidation") echo I2J0EXAMPLE ;;
esac
"#;

const FAKE_SAM: &str = r#"#!/usr/bin/env bash
{ printf 'sam'; printf '\t%s' "$@"; printf '\n'; } >>"$FAKE_STATE/calls.log"
if [ "$1" = deploy ]; then
    cat >"$FAKE_STATE/outputs.json" <<'JSON'
[{"OutputKey": "ConsoleDomainName", "OutputValue": "d2x7example.cloudfront.net"},
 {"OutputKey": "ConsoleUrl", "OutputValue": "https://d2x7example.cloudfront.net/"},
 {"OutputKey": "ConsoleAuthority", "OutputValue": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12"},
 {"OutputKey": "ConsoleClientId", "OutputValue": "4a1b2c3d4e5f"},
 {"OutputKey": "CognitoDomain", "OutputValue": "https://tierdesk-1.auth.eu-west-1.amazoncognito.com"},
 {"OutputKey": "WebBucketName", "OutputValue": "tierdesk-webbucket-1"},
 {"OutputKey": "DistributionId", "OutputValue": "E2ABCEXAMPLE"}]
JSON
fi
"#;

const FAKE_NPM: &str = r#"#!/usr/bin/env bash
{ printf 'npm'; printf '\t%s' "$@"; printf '\n'; } >>"$FAKE_STATE/calls.log"
if [ "$1 $2" = "run build" ]; then
    mkdir -p dist/assets
    echo '<!doctype html><script type="module" src="/assets/index-4f9a2c1b.js"></script>' >dist/index.html
    echo 'console.log(1)' >dist/assets/index-4f9a2c1b.js
fi
"#;

struct FakeDeploy {
    dir: std::path::PathBuf,
}

impl FakeDeploy {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tierdesk-fake-deploy-{}", ulid::Ulid::new()));
        for sub in ["bin", "state", "web"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for (name, script) in [("aws", FAKE_AWS), ("sam", FAKE_SAM), ("npm", FAKE_NPM)] {
            let path = dir.join("bin").join(name);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.join("web/package.json"), r#"{"name":"console","private":true}"#).unwrap();
        std::fs::write(dir.join("web/package-lock.json"), r#"{"lockfileVersion":3}"#).unwrap();
        Self { dir }
    }

    /// `infra/deploy.sh [args]`; the recorded calls of this run.
    fn run(&self, args: &[&str]) -> Vec<Vec<String>> {
        let log = self.dir.join("state/calls.log");
        let _ = std::fs::remove_file(&log);
        let path = format!("{}:{}", self.dir.join("bin").display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("bash")
            .arg(repo_root().join("infra/deploy.sh"))
            .args(args)
            .env("PATH", path)
            .env("FAKE_STATE", self.dir.join("state"))
            .env("AWS_CLI", self.dir.join("bin/aws"))
            .env("SAM_CLI", self.dir.join("bin/sam"))
            .env("WEB_DIR", self.dir.join("web"))
            .env("STACK", "tierdesk-test")
            .env(
                "PARAMS",
                "StripeSecretArn=arn:aws:secretsmanager:eu-west-1:1:secret:s MailFrom=\"Tierdesk <b@x.example>\"",
            )
            .output()
            .expect("bash infra/deploy.sh");
        assert!(out.status.success(), "deploy.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Console: https://d2x7example.cloudfront.net/"));
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

impl Drop for FakeDeploy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value after `flag` in one recorded call.
fn flag<'a>(call: &'a [String], name: &str) -> Option<&'a str> {
    call.iter().position(|a| a == name).and_then(|i| call.get(i + 1)).map(String::as_str)
}

fn position(calls: &[Vec<String>], what: impl Fn(&[String]) -> bool, label: &str) -> usize {
    calls.iter().position(|c| what(c)).unwrap_or_else(|| panic!("no {label} in {calls:?}"))
}

#[test]
fn make_deploy_passes_the_distributions_domain_back_and_uploads_assets_before_index_then_config_then_invalidates() {
    let fake = FakeDeploy::new();
    // The first deploy: no stack yet, so ConsoleDomain is empty, and once the
    // distribution exists it deploys again with its domain.
    let calls = fake.run(&[]);
    let sam: Vec<&Vec<String>> = calls.iter().filter(|c| c[0] == "sam").collect();
    assert_eq!(sam[0][1], "build", "{calls:?}");
    let deploys: Vec<&str> = sam
        .iter()
        .filter(|c| c[1] == "deploy")
        .map(|c| flag(c, "--parameter-overrides").expect("--parameter-overrides"))
        .collect();
    assert_eq!(deploys.len(), 2, "two passes on the first deploy: {deploys:?}");
    assert!(deploys[0].starts_with("ConsoleDomain=\"\" "), "{deploys:?}");
    assert!(deploys[1].starts_with("ConsoleDomain=\"d2x7example.cloudfront.net\" "), "{deploys:?}");
    for d in &deploys {
        assert!(d.contains("StripeSecretArn=arn:aws:secretsmanager:") && d.contains("MailFrom=\"Tierdesk"), "{d}");
    }
    assert!(sam.iter().filter(|c| c[1] == "deploy").all(|c| flag(c, "--stack-name") == Some("tierdesk-test")));

    // A later deploy: one pass, with the domain it already has.
    let calls = fake.run(&[]);
    let deploys: Vec<&str> = calls
        .iter()
        .filter(|c| c[0] == "sam" && c[1] == "deploy")
        .map(|c| flag(c, "--parameter-overrides").unwrap())
        .collect();
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert!(deploys[0].starts_with("ConsoleDomain=\"d2x7example.cloudfront.net\" "));

    // The web part: build, then hashed assets (immutable), then index.html and the
    // rest (no-cache, config.json left alone), then config.json, then the invalidation.
    let build = position(&calls, |c| c[0] == "npm" && c[1..3] == ["run", "build"], "npm run build");
    let npm_ci = position(&calls, |c| c[0] == "npm" && c[1] == "ci", "npm ci");
    let assets = position(
        &calls,
        |c| c[0] == "aws" && c[1..3] == ["s3", "sync"] && c[4] == "s3://tierdesk-webbucket-1/assets",
        "assets sync",
    );
    let rest = position(
        &calls,
        |c| c[0] == "aws" && c[1..3] == ["s3", "sync"] && c[4] == "s3://tierdesk-webbucket-1",
        "index sync",
    );
    let config = position(&calls, |c| c[0] == "aws" && c[1..3] == ["s3", "cp"], "config.json upload");
    let invalidation =
        position(&calls, |c| c[0] == "aws" && c[1..3] == ["cloudfront", "create-invalidation"], "invalidation");
    assert!(npm_ci < build && build < assets && assets < rest && rest < config && config < invalidation, "{calls:?}");
    assert_eq!(flag(&calls[assets], "--cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(flag(&calls[rest], "--cache-control"), Some("no-cache"));
    let excluded: Vec<&String> = calls[rest]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && calls[rest][i - 1] == "--exclude")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(excluded, vec!["assets/*", "config.json"], "{:?}", calls[rest]);
    assert_eq!(calls[config][4], "s3://tierdesk-webbucket-1/config.json");
    assert_eq!(flag(&calls[config], "--cache-control"), Some("no-cache"));
    assert_eq!(flag(&calls[config], "--content-type"), Some("application/json"));
    assert_eq!(flag(&calls[invalidation], "--distribution-id"), Some("E2ABCEXAMPLE"));
    assert_eq!(flag(&calls[invalidation], "--paths"), Some("/*"));
    let uploaded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fake.dir.join("state/uploaded-config.json")).unwrap()).unwrap();
    for key in CONFIG_KEYS {
        assert!(uploaded[key].as_str().is_some_and(|v| !v.is_empty()), "uploaded config.json has {key}: {uploaded}");
    }
    assert_eq!(uploaded["redirectUri"], "https://d2x7example.cloudfront.net/auth/callback");
    assert_eq!(uploaded["clientId"], "4a1b2c3d4e5f");
}

/// The dev gateway runs the console under the deployed policy, so a browser test that
/// passes locally cannot be broken in AWS by the CSP alone.
#[test]
fn the_dev_gateway_sends_the_deployed_security_headers() {
    let t = template();
    let headers = &t["Resources"]["WebSecurityHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
        ["SecurityHeadersConfig"];
    let deployed = content_security_policy(&headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]);
    // Locally connect-src is 'self' alone: the deployed one adds only the pool's hosts.
    let local_view: String = deployed
        .split(';')
        .map(|d| {
            let d = d.trim();
            if d.starts_with("connect-src") {
                assert!(d.starts_with("connect-src 'self' https://"), "{d}");
                "connect-src 'self'".to_string()
            } else {
                d.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let dev: std::collections::BTreeMap<&str, &str> = devtools::web::SECURITY_HEADERS.into_iter().collect();
    assert_eq!(dev["content-security-policy"], local_view);
    assert_eq!(headers["ContentTypeOptions"]["Override"].as_bool(), Some(true));
    assert_eq!(dev["x-content-type-options"], "nosniff");
    assert_eq!(Some(dev["x-frame-options"]), headers["FrameOptions"]["FrameOption"].as_str());
    assert_eq!(Some(dev["referrer-policy"]), headers["ReferrerPolicy"]["ReferrerPolicy"].as_str());
}

/// The quote email's link opens the console's quote page on the console's host
/// (`https://<ConsoleDomain>/quote/{token}`, a client-side route CloudFront serves
/// as index.html) unless `QuoteViewUrl` says otherwise: behind CloudFront the
/// function sees API Gateway's host, where no page is. And no AWS log holds a
/// link's token: API Gateway's access log names the route's template
/// (`$context.routeKey`), never the path, and the distribution writes no logs.
#[test]
fn the_quote_link_opens_the_console_page_and_no_access_log_holds_its_token() {
    let t = template();
    let env = &t["Resources"]["QuotesFunction"]["Properties"]["Environment"]["Variables"]["QUOTE_VIEW_URL"];
    let (given, configured, default) = if_branches(env);
    assert!(is_ref(configured, "QuoteViewUrl"), "{env:?}");
    let given_condition = &t["Conditions"][given];
    assert!(format!("{given_condition:?}").contains("QuoteViewUrl"), "{given}: {given_condition:?}");
    let (has_console, console_page, neither) = if_branches(default);
    assert_eq!(has_console, "HasConsoleDomain");
    assert_eq!(sub_text(console_page), "https://${ConsoleDomain}/quote");
    assert_eq!(neither.as_str(), Some(""), "neither: the host the send request came to");
    let parameter = t["Parameters"]["QuoteViewUrl"]["Description"].as_str().expect("QuoteViewUrl description");
    assert!(parameter.contains("/quote"), "{parameter}");

    let format = t["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"].as_str().expect("format");
    assert!(format.contains("$context.routeKey"), "{format}");
    for raw in ["$context.path", "$context.rawPath", "$context.http.path", "$context.requestUri"] {
        assert!(!format.contains(raw), "the access log would carry a link's token: {raw}");
    }
    assert!(distribution(&t)["Logging"].is_null(), "CloudFront standard logs would record /quote/{{token}}");
}
