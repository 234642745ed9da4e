/**
 * A kubeconfig whose API server refuses connections (port 1 on loopback): commands get past
 * their flags and the repository, and stop at the cluster, quickly and without a real one.
 */
export const DEAD_KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: dead, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: not-a-secret } }]
contexts: [{ name: dead, context: { cluster: dead, user: u } }]
current-context: dead
`;
