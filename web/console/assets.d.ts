// Stylesheets are bundled by esbuild (scripts/build-console.mjs) into console.css.
declare module "*.css";
