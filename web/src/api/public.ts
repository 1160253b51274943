// The API client of the public pages: the same generated types as the console's
// client, without the bearer-token middleware, so a public page never sends a staff
// member's token (and a public route never depends on one).
import createClient from "openapi-fetch";
import type { paths } from "./schema";

export const publicApi = createClient<paths>({ baseUrl: "" });
