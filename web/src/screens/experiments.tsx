export function ExperimentsScreen(_props: { sub?: string }) {
  return <h1>Experiments</h1>;
}
