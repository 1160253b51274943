// The named usage limits a tier carries (and a quote's customLimits may raise),
// in the order the screens show them.
export const LIMITS = ["listings", "imagesPerListing", "emailsProcessed", "aiResponses", "leads"] as const;
export type LimitName = (typeof LIMITS)[number];

export const LIMIT_LABEL: Record<LimitName, string> = {
  listings: "Listings",
  imagesPerListing: "Images per listing",
  emailsProcessed: "Emails processed",
  aiResponses: "AI responses",
  leads: "Leads",
};

export function limitLabel(name: string): string {
  return (LIMIT_LABEL as Record<string, string>)[name] ?? name;
}
