export function PartnersScreen(_props: { sub?: string }) {
  return <h1>Partners</h1>;
}
