export function TiersScreen(_props: { sub?: string }) {
  return <h1>Tiers</h1>;
}
