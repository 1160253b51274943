//! Matching `METHOD /path` against a function's route table. The table is plain
//! data so a test can check it against `template.yaml` and `openapi.yaml`.

use super::request::RequestError;
use http::Method;

#[derive(Debug, Clone, Copy)]
pub struct Route<Op> {
    pub method: &'static str,
    /// API Gateway syntax: `/api/admin/tiers/{tierId}`.
    pub path: &'static str,
    pub op: Op,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct PathParams(Vec<(&'static str, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str())
    }
}

pub fn match_route<Op: Copy>(
    routes: &[Route<Op>],
    method: &Method,
    path: &str,
) -> Result<(Op, PathParams), RequestError> {
    let path = path.trim_end_matches('/');
    let mut path_matched = false;
    for route in routes {
        if let Some(params) = match_path(route.path, path) {
            if route.method == method.as_str() {
                return Ok((route.op, params));
            }
            path_matched = true;
        }
    }
    Err(if path_matched { RequestError::MethodNotAllowed } else { RequestError::NotFound })
}

fn match_path(pattern: &'static str, path: &str) -> Option<PathParams> {
    let mut pattern_parts = pattern.split('/');
    let mut path_parts = path.split('/');
    let mut params = Vec::new();
    loop {
        match (pattern_parts.next(), path_parts.next()) {
            (None, None) => return Some(PathParams(params)),
            (Some(p), Some(s)) if p.starts_with('{') && p.ends_with('}') => {
                if s.is_empty() {
                    return None;
                }
                params.push((&p[1..p.len() - 1], s.to_string()));
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[Route<u8>] = &[
        Route { method: "GET", path: "/api/admin/tiers", op: 1 },
        Route { method: "POST", path: "/api/admin/tiers/initialize", op: 2 },
        Route { method: "GET", path: "/api/admin/tiers/{tierId}", op: 3 },
        Route { method: "PUT", path: "/api/admin/tiers/{tierId}/features/{featureId}", op: 4 },
    ];

    #[test]
    fn static_segments_win_in_table_order_and_params_are_captured() {
        assert_eq!(match_route(ROUTES, &Method::GET, "/api/admin/tiers/").unwrap().0, 1);
        assert_eq!(match_route(ROUTES, &Method::POST, "/api/admin/tiers/initialize").unwrap().0, 2);
        let (op, p) = match_route(ROUTES, &Method::PUT, "/api/admin/tiers/gold/features/ai").unwrap();
        assert_eq!((op, p.get("tierId"), p.get("featureId")), (4, "gold", "ai"));
        assert!(matches!(
            match_route(ROUTES, &Method::DELETE, "/api/admin/tiers"),
            Err(RequestError::MethodNotAllowed)
        ));
        assert!(matches!(match_route(ROUTES, &Method::GET, "/api/nope"), Err(RequestError::NotFound)));
    }
}
