// Vite's `?url` imports: the URL the asset is served from.
declare module '*?url' {
  const url: string;
  export default url;
}
