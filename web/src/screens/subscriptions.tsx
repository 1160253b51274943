export function SubscriptionsScreen(_props: { sub?: string }) {
  return <h1>Subscriptions</h1>;
}
