import type { NextConfig } from "next";

const config: NextConfig = {
  // `npm run typecheck` checks the whole project once; the build need not do it again (2 cores).
  typescript: { ignoreBuildErrors: true },
  devIndicators: false,
  poweredByHeader: false,
  reactStrictMode: true,
};

export default config;
