export function printAdmin(admin: { name: string; password: string } | null): void {
  if (!admin) return;
  console.log(`
  First start: an Administrator account was created. This password is shown only once.
    user name: ${admin.name}
    password:  ${admin.password}
`);
}
